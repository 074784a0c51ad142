/* The host lock (see hostlock.h). A POSIX lock rather than flock(2): on
 * conflict F_GETLK gives the holder's pid translated into our own pid
 * namespace, so a DaemonSet pod with hostPID and a host agent name each
 * other correctly, with no window where the file is locked but empty. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/hostlock.h"

struct hostlock {
	int fd;
};

static void make_parent(const char *path)
{
	char dir[256];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return;
	*slash = 0;
	mkdir(dir, 0755);	/* /run/sonde; an error shows up in open() */
}

/* The pid the holder wrote, for a holder the kernel cannot name here. */
static pid_t pid_in_file(int fd)
{
	char buf[24];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	long v;

	if (n <= 0)
		return 0;
	buf[n] = 0;
	v = strtol(buf, NULL, 10);
	return v > 0 && v <= 0x7fffffff ? (pid_t)v : 0;
}

int hostlock__take(struct hostlock **out, const char *path, pid_t *holder)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	struct hostlock *l;
	char line[24];
	int fd, n, err;

	*out = NULL;
	*holder = 0;
	make_parent(path);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (fcntl(fd, F_SETLK, &fl) != 0) {
		err = -errno;
		if (err == -EAGAIN || err == -EACCES) {
			struct flock q = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

			if (fcntl(fd, F_GETLK, &q) == 0 && q.l_type != F_UNLCK && q.l_pid > 0)
				*holder = q.l_pid;
			else
				*holder = pid_in_file(fd);
			err = -EBUSY;
		}
		close(fd);
		return err;
	}
	n = snprintf(line, sizeof(line), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)n, 0) != n) {
		/* the lock holds all the same; only the hint for humans is missing */
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		close(fd);
		return -ENOMEM;
	}
	l->fd = fd;
	*out = l;
	return 0;
}

void hostlock__release(struct hostlock *l)
{
	if (!l)
		return;
	if (ftruncate(l->fd, 0) != 0) {
		/* a stale pid in an unlocked file misleads nobody: the lock decides */
	}
	close(l->fd);	/* drops the lock */
	free(l);
}
