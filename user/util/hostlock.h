/* One agent per host: a POSIX record lock on a file under /run, which the
 * kernel drops when its holder dies (kill -9 included). */
#ifndef SONDE_HOSTLOCK_H
#define SONDE_HOSTLOCK_H

#include <sys/types.h>

#define HOSTLOCK_PATH "/run/sonde/agent.lock"

struct hostlock;

/* Takes the lock at path (its directory is created) and writes our pid in
 * the file. 0 and *out set; -EBUSY when another process holds it, with
 * *holder its pid as this pid namespace sees it, else as written in the
 * file by the holder (a pid in another namespace), else 0; another
 * negative errno when the file cannot be used. */
int hostlock__take(struct hostlock **out, const char *path, pid_t *holder);
/* Empties the file and drops the lock. NULL is a no-op. */
void hostlock__release(struct hostlock *l);

#endif
