/* Loader of inject.bpf.c: traceparent injection into outgoing plaintext
 * HTTP/1.x requests (sockops on the cgroup v2 root + sk_msg on a sockhash). */
#ifndef SONDE_INJECT_H
#define SONDE_INJECT_H

#include <stdbool.h>
#include <stdint.h>

#include "probe/loader.h"
#include "sonde.h"

struct inject;

/* Loads and attaches; on failure logs why, reports the hooks unavailable in
 * sonde_probe_info and returns a negative errno (the agent runs on). */
int inject__open(struct inject **out, struct loader *ld, uint32_t self_tgid,
		 uint32_t filter_tgid);
void inject__close(struct inject *in);
/* Reports sockops and sk_msg unavailable in sonde_probe_info, for why,
 * when the agent chose not to open injection at all. */
void inject__report_off(struct loader *ld, const char *why);
/* Connections established to this remote port from now on go through
 * sk_msg. Returns true when the port was not in the set before. */
bool inject__add_port(struct inject *in, uint16_t port);
bool inject__has_port(const struct inject *in, uint16_t port);
/* Puts an established connection of another process (its fd there) into
 * the sockhash, so that its next requests get a traceparent: for sockets
 * sockops did not see (connected before the agent, or before their port
 * was learnt). tuple: the connection as the kernel reported it, to check
 * that the fd still holds it. 0 or a negative errno. */
int inject__add_socket(struct inject *in, uint32_t tgid, int32_t fd,
		       const struct sonde_tuple *tuple);
/* Policy of inject__client_seen: learn ports from the connections seen
 * (--no-inject-learn turns it off); never the agent's own port. */
void inject__set_policy(struct inject *in, bool learn, uint16_t own_port);
/* A plaintext client connection was seen speaking HTTP/1.x (ev: the chunk
 * that showed it): its port is learnt, and a connection sockops could not
 * have put in the sockhash (older than the agent, or than the learning of
 * its port) is adopted, so that its next requests get a traceparent too
 * (keep-alive pools). in may be NULL. */
void inject__client_seen(struct inject *in, const struct sonde_data_event *ev,
			 const struct sonde_tuple *tuple);
/* The process rule (on with learning): every new outbound connection of a
 * process that serves or sends HTTP/1.x is put in the sockhash, except to
 * ports known to carry another protocol; sk_msg passes anything that does
 * not begin with a request line untouched. The first request to a server
 * never seen before is then injected too. */
/* A connection of process tgid was seen serving or sending HTTP/1.x. */
void inject__http_process(struct inject *in, uint32_t tgid);
/* Process tgid exited: forgotten (the kernel's LRU ages the rest). */
void inject__process_gone(struct inject *in, uint32_t tgid);
/* Connections to this port carry another protocol (or TLS, whose ciphertext
 * sk_msg cannot change): left out by the process rule. A port learnt or
 * given as HTTP is never marked. Returns true when newly marked. */
bool inject__not_http_port(struct inject *in, uint16_t port);
bool inject__is_not_http_port(const struct inject *in, uint16_t port);
/* Takes a client connection found to speak something else out of the
 * sockhash (the process rule put it there): its sends leave tcp_bpf. 0, or
 * a negative errno (-ENOENT: it was not there). */
int inject__drop_socket(struct inject *in, uint32_t tgid, int32_t fd,
			const struct sonde_tuple *tuple);
/* Connections taken out by inject__drop_socket. */
uint64_t inject__dropped(const struct inject *in);
/* Connections adopted by inject__client_seen. */
uint64_t inject__adopted(const struct inject *in);
/* sum over CPUs of an outcome counter */
uint64_t inject__counter(const struct inject *in, enum sonde_inject_counter c);

#endif
