/* Wire format between sonde's BPF programs and the daemon: event structs,
 * enums and map values. Fixed-width types, explicit padding, sizes asserted;
 * enum values are never renumbered and retired fields become reserved. */
#ifndef SONDE_H
#define SONDE_H

#ifdef __BPF__
/* vmlinux.h already provides __u8..__u64 */
#else
#include <linux/types.h>
#endif

/* Hard upper bound for captured payload per syscall; the load-time tunable
 * capture_bytes is clamped to it. Power of two so the BPF side can mask. */
#define SONDE_CAPTURE_MAX 4096
#define SONDE_CAPTURE_DEFAULT 1024
#define SONDE_COMM_LEN 16
#define SONDE_EXE_LEN 32	/* executable basename, cut to fit */

enum sonde_op {
	SONDE_OP_DATA = 1,	/* payload seen on a tracked TCP socket */
	SONDE_OP_CLOSE = 2,	/* last fd of a tracked socket closed by close(2) (socket and
				 * fentry tiers: or the socket destroyed) */
	SONDE_OP_EXIT = 3,	/* every thread of a process has exited */
	/* reserved for the uprobe feeds: */
	SONDE_OP_DB_CALL = 4,	/* libpq/libmysqlclient call: SQL text (issue #4) */
	SONDE_OP_TLS_BIND = 5,	/* an SSL* bound to its socket (issue #5) */
	SONDE_OP_TRACE_CTX = 6,	/* ids the kernel chose for a request (tracectx.h, inject.bpf.c) */
	SONDE_OP_IO_END = 7,	/* a client connection ended under a read or send: EOF or error */
	SONDE_OP_CGROUP = 8,	/* a process's (v2) cgroup, ahead of its first connection's data */
	SONDE_OP_CONN = 9,	/* a connection's addresses and process, ahead of its first data */
};

enum sonde_dir {
	SONDE_DIR_EGRESS = 1,	/* the process wrote */
	SONDE_DIR_INGRESS = 2,	/* the process read */
};

enum sonde_role {
	SONDE_ROLE_UNKNOWN = 0,	/* socket predates the agent: inferred from payload */
	SONDE_ROLE_CLIENT = 1,	/* connect(2) */
	SONDE_ROLE_SERVER = 2,	/* accept(2)/accept4(2) */
};

enum sonde_syscall {
	SONDE_SYS_READ = 1,
	SONDE_SYS_WRITE = 2,
	SONDE_SYS_READV = 3,
	SONDE_SYS_WRITEV = 4,
	SONDE_SYS_RECVFROM = 5,
	SONDE_SYS_SENDTO = 6,
	SONDE_SYS_RECVMSG = 7,
	SONDE_SYS_SENDMSG = 8,
	SONDE_SYS_SENDFILE = 9,	/* bytes counted, payload not captured (file data) */
	/* Seen only by the socket-level tier (tp_btf/sock_*_length): bytes
	 * counted, payload not captured. */
	SONDE_SYS_SPLICE = 10,
	SONDE_SYS_SENDMMSG = 11,
	SONDE_SYS_RECVMMSG = 12,
};

/* Socket I/O whose payload sonde could not read, by why (index of the
 * unseen map of sock.bpf.c; sonde_payload_unseen_*_total{via}). The bytes
 * are counted, never guessed at. */
enum sonde_unseen {
	SONDE_UNSEEN_SENDFILE = 0,	/* sendfile(2): file data */
	SONDE_UNSEEN_SPLICE = 1,	/* splice(2) */
	SONDE_UNSEEN_MMSG = 2,		/* sendmmsg/recvmmsg: which message is not known */
	SONDE_UNSEEN_NO_SYSCALL = 3,	/* io_uring, kernel threads, other syscalls: no user
					 * buffer to read (socket tier only) */
	SONDE_UNSEEN__MAX = 4,
};
struct sonde_unseen_count {
	__u64 calls;
	__u64 bytes;
};

/* Event flags */
#define SONDE_F_TRUNCATED 0x01	/* payload longer than what was captured */
#define SONDE_F_TLS 0x02	/* plaintext from SSL_read/SSL_write uprobes, not the wire */
#define SONDE_F_LOSS 0x04	/* records of this connection were lost before this one (ring
				 * full): what the daemon holds for it cannot be paired */

/* Common header of every ring buffer record (Tetragon style). */
struct sonde_event_hdr {
	__u8 op;		/* enum sonde_op */
	__u8 flags;
	__u16 pad;
	__u32 size;		/* whole record, header included */
	__u64 ktime;		/* bpf_ktime_get_ns() when the record was made */
};

/* Addresses in network byte order; IPv4 in the first 4 bytes of the 16. */
struct sonde_tuple {
	__u16 family;		/* AF_INET / AF_INET6 */
	__u16 sport;		/* local port, host byte order */
	__u16 dport;		/* remote port, host byte order */
	__u16 pad;
	__u8 saddr[16];		/* local */
	__u8 daddr[16];		/* remote */
};

struct sonde_data_event {
	struct sonde_event_hdr hdr;
	__u64 enter_ns;		/* syscall entry (socket and fentry tiers: when the
				 * socket call returned; no hook sees the entry) */
	__u64 sk;		/* struct sock *, identity of the connection */
	__u32 tgid;
	__u32 tid;
	__s32 fd;
	__u32 len;		/* bytes the syscall transferred */
	__u32 cap_len;		/* bytes of it in data[] */
	__u8 dir;		/* enum sonde_dir */
	__u8 role;		/* enum sonde_role */
	__u8 syscall;		/* enum sonde_syscall */
	__u8 pad;
	__u8 data[];		/* cap_len bytes */
};

/* SONDE_OP_CONN: what stays the same for every record of a connection,
 * written once, ahead of its first data record (same ring, not a later
 * time), so that each data record carries only the call. Written again
 * after the daemon takes back a connection it handed back (its entry in
 * the daemon was freed then). */
struct sonde_conn_event {
	struct sonde_event_hdr hdr;
	__u64 sk;
	__u32 tgid;
	__s32 fd;
	__u8 role;		/* enum sonde_role, as the conns entry has it */
	__u8 pad[7];
	struct sonde_tuple tuple;
	char comm[SONDE_COMM_LEN];	/* of the thread making the first record */
	char exe[SONDE_EXE_LEN];	/* read when the socket was first seen: the
					 * process may be gone before the daemon looks */
};

struct sonde_close_event {
	struct sonde_event_hdr hdr;
	__u64 sk;
	__u32 tgid;
	__s32 fd;
};

struct sonde_exit_event {
	struct sonde_event_hdr hdr;
	__u32 tgid;
	__u32 pad;
};

/* SONDE_OP_CGROUP: the cgroup (v2, bpf_get_current_cgroup_id) of a process,
 * written ahead of the first record of a connection when it differs from
 * the last one written for the tgid; never per request. The daemon names a
 * process that is gone before it reads /proc/<pid>/cgroup from the cgroup
 * directory with this id (its inode number). */
struct sonde_cgroup_event {
	struct sonde_event_hdr hdr;
	__u64 cgroup_id;
	__u32 tgid;
	__u32 pad;
};

/* SONDE_OP_IO_END: on a connection that is not known to be a server's, a
 * read returned 0 (the peer closed) or a read or send failed with an error
 * that ends the connection (reset, timeout, unreachable). Requests still
 * waiting for their response there have failed. Never sent for EAGAIN,
 * EINTR and the like, which end nothing. */
struct sonde_io_end_event {
	struct sonde_event_hdr hdr;	/* ktime: syscall exit */
	__u64 sk;
	__u32 tgid;
	__u32 tid;
	__s32 fd;
	__s32 err;		/* 0: end of stream; else the errno (positive) */
	__u8 dir;		/* enum sonde_dir */
	__u8 syscall;		/* enum sonde_syscall */
	__u8 pad[6];
};

/* ---- database client calls (dbclient.bpf.c, issue #4) ---- */

/* Which client library function a SONDE_OP_DB_CALL record comes from. */
enum sonde_db_func {
	SONDE_DB_PQ_SEND_QUERY = 1,		/* PQsendQuery(conn, query) */
	SONDE_DB_PQ_SEND_QUERY_PARAMS = 2,	/* PQsendQueryParams(conn, command, ...) */
	SONDE_DB_PQ_SEND_PREPARE = 3,		/* PQsendPrepare(conn, name, query, ...): text is
						 * "name\0query" */
	SONDE_DB_PQ_SEND_QUERY_PREPARED = 4,	/* PQsendQueryPrepared(conn, name, ...): text = name */
	SONDE_DB_MYSQL_REAL_QUERY = 5,		/* mysql_real_query(mysql, q, len) */
	SONDE_DB_MYSQL_SEND_QUERY = 6,		/* mysql_send_query(mysql, q, len) */
	SONDE_DB_MYSQL_STMT_PREPARE = 7,	/* mysql_stmt_prepare(stmt, q, len) */
	SONDE_DB_MYSQL_STMT_EXECUTE = 8,	/* mysql_stmt_execute(stmt): no text */
};

#define SONDE_DB_TEXT_MAX 512	/* SQL bytes captured per call (power of two) */

struct sonde_db_call_event {
	struct sonde_event_hdr hdr;	/* op = SONDE_OP_DB_CALL, ktime = function entry */
	__u64 conn;		/* PGconn * / MYSQL * / MYSQL_STMT * */
	__u32 tgid;
	__u32 tid;
	__u8 func;		/* enum sonde_db_func */
	__u8 pad[3];
	__u32 text_len;		/* bytes in text (NUL excluded), cut to fit */
	char comm[SONDE_COMM_LEN];
	char text[SONDE_DB_TEXT_MAX];
};

/* conns map value: one tracked socket, keyed by tgid << 32 | fd. */
#define SONDE_CONN_IGNORED 0x01	/* not TCP, or filtered out: skip cheaply */
#define SONDE_CONN_TLS 0x02	/* OpenSSL runs on it: plaintext comes from the TLS
				 * uprobes, the ciphertext is not captured */
#define SONDE_CONN_LOST 0x04	/* a record of it was lost: its next record carries
				 * SONDE_F_LOSS */
#define SONDE_CONN_CGROUP 0x08	/* its process's cgroup was reported (SONDE_OP_CGROUP) */
#define SONDE_CONN_META 0x10	/* its SONDE_OP_CONN record was written */
#define SONDE_CONN_CTX 0x20	/* a server read of it opened its thread's trace
				 * context (bpf/lib/tracectx.h): its next write ends it */
struct sonde_conn {
	__u64 sk;
	__u64 open_ns;
	__u8 role;
	__u8 flags;
	__u16 pad[3];
	struct sonde_tuple tuple;
	__u64 file;		/* struct file * of the fd: a match skips the fd→sock walk */
	char exe[SONDE_EXE_LEN];	/* executable basename of the owning process */
};

/* Per-CPU counters of the socket tracer, indexed by enum sonde_counter. */
enum sonde_counter {
	SONDE_CNT_EVENTS = 0,		/* records written to the ring */
	SONDE_CNT_RING_DROPS = 1,	/* ring full: record lost */
	SONDE_CNT_READ_FAIL = 2,	/* payload could not be read from user memory */
	SONDE_CNT_CONN_NEW = 3,		/* sockets started being tracked */
	SONDE_CNT_ARGS_MISS = 4,	/* exit of a syscall begun before attach, args from registers */
	SONDE_CNT_TCP_TX = 5,		/* bytes sent on tracked TCP sockets (tracepoint mode) */
	SONDE_CNT_TCP_RX = 6,		/* bytes received on tracked TCP sockets (tracepoint mode) */
	SONDE_CNT__MAX = 8,
};

/* Per-process TCP byte totals (tcp_bytes map of tcp.bpf.c), keyed by tgid. */
struct sonde_tcp_bytes {
	__u64 tx;
	__u64 rx;
};


/* ---- TCP health and scheduler saturation (tcpstate.bpf.c, sched.bpf.c) ---- */

/* Log2 latency histograms aggregated in the kernel: slot 0 holds values
 * below 1 µs, slot k (1..SLOTS-2) values in [2^(k-1), 2^k) µs, the last
 * slot everything from 2^(SLOTS-2) µs up. The daemon maps slot k to the
 * Prometheus bucket le = 2^k µs (last slot: +Inf). */
#define SONDE_HIST_SLOTS 27

/* Why a connect() never reached ESTABLISHED, from sk_err at the
 * SYN_SENT → CLOSE transition (the errno connect() reports). */
enum sonde_tcp_fail {
	SONDE_TCP_FAIL_REFUSED = 0,	/* ECONNREFUSED: reset received in SYN_SENT */
	SONDE_TCP_FAIL_TIMEOUT = 1,	/* ETIMEDOUT: SYN retransmissions exhausted */
	SONDE_TCP_FAIL_UNREACHABLE = 2,	/* EHOSTUNREACH/ENETUNREACH/EHOSTDOWN/ENETDOWN (ICMP) */
	SONDE_TCP_FAIL_ABORTED = 3,	/* no error: closed by the process before completion */
	SONDE_TCP_FAIL_OTHER = 4,	/* any other errno */
	SONDE_TCP_FAIL__MAX = 8,
};

/* sk_owner flags */
#define SONDE_OWNER_IGNORED 0x01	/* agent itself or filtered out: count nothing */
#define SONDE_OWNER_OPEN 0x02		/* counted in open connections: decrement at CLOSE */

/* sk_owner map value (tcpstate.bpf.c): the process a socket belongs to,
 * learnt in process context (connect, listen, accept) so that softirq-time
 * events on the socket can be attributed. */
struct sonde_sk_owner {
	__u32 tgid;
	__u8 role;		/* enum sonde_role; 3 = listener */
	__u8 flags;		/* SONDE_OWNER_* */
	__u16 pad;
	__u64 syn_ns;		/* SYN_SENT entered (client), for the connect duration */
	__u64 drops_seen;	/* listener: sk_drops already counted */
	char exe[SONDE_EXE_LEN];
};

/* tcp_stats map value, keyed by tgid (0 = not attributable): counts since
 * the daemon last collected (it moves them out with lookup-and-delete). */
struct sonde_tcp_stats {
	char exe[SONDE_EXE_LEN];	/* "" for tgid 0 */
	__u64 connects;		/* connect() reached ESTABLISHED */
	__u64 accepts;		/* accept()/accept4() returned a TCP socket */
	__u64 fails[SONDE_TCP_FAIL__MAX];	/* indexed by enum sonde_tcp_fail */
	__u64 resets_sent;
	__u64 resets_received;
	__u64 retransmits;	/* segments retransmitted */
	__s64 open_delta;	/* connections opened minus closed */
	__u64 listen_drops;	/* sk_drops growth of the process's listeners */
	__u64 connect_sum_ns;
	__u64 srtt_sum_us;
	__u64 connect_hist[SONDE_HIST_SLOTS];
	__u64 srtt_hist[SONDE_HIST_SLOTS];
	__u64 cgroup_id;	/* the process's cgroup (v2) at its last connect/listen/accept
				 * since the last collection; 0: none seen */
};

/* runq map value (sched.bpf.c, per-CPU), keyed by tgid: run-queue latency
 * of the process's threads since the daemon last collected. */
struct sonde_runq_stats {
	char exe[SONDE_EXE_LEN];	/* set on the CPU that created the entry */
	__u64 sum_ns;
	__u64 hist[SONDE_HIST_SLOTS];
};

/* One record per user-space thread from sched.bpf.c's task iterator: the
 * kernel's own run-queue accounting (sched_info, what /proc/<tid>/schedstat
 * shows), read at each collection. No hook on the scheduler is needed. */
struct sonde_runq_task {
	__u32 tid;
	__u32 tgid;
	__u64 start_ns;		/* task start (boot clock): tells a reused tid apart */
	__u64 run_delay_ns;	/* time spent runnable, waiting for a CPU */
	__u64 pcount;		/* times it was switched onto a CPU */
};

/* ---- W3C trace context (bpf/lib/tracectx.h, bpf/inject.bpf.c) ---- */

/* thread_ctx map value, keyed by pid_tgid: the server request a thread is
 * serving, so that requests it sends meanwhile are injected as children. */
struct sonde_thread_ctx {
	__u8 trace_id[16];
	__u8 span_id[8];	/* the server span */
	__u64 ktime;		/* when the request's first bytes were read */
	__u8 flags;		/* W3C trace-flags */
	__u8 active;		/* cleared when the thread writes the response */
	__u8 pad[6];
};

enum sonde_trace_kind {
	SONDE_TRACE_SERVER = 1,	/* ids of a server request read by tid (sock.bpf.c) */
	SONDE_TRACE_CLIENT = 2,	/* ids of a client request tid sent, header injected */
};

/* SONDE_OP_TRACE_CTX record: written just before the data event that
 * carries the request's first bytes, so the daemon meets it first. */
struct sonde_trace_ctx_event {
	struct sonde_event_hdr hdr;
	__u32 tgid;
	__u32 tid;
	__u16 sport;		/* local port, host order: pairs it with the connection */
	__u16 dport;		/* remote port, host order */
	__u8 kind;		/* enum sonde_trace_kind */
	__u8 trace_flags;
	__u8 remote;		/* server: the trace id came from a traceparent header */
	__u8 pad;
	__u8 trace_id[16];
	__u8 span_id[8];
	__u8 parent_span_id[8];	/* zero: root */
};

/* Injection outcomes, per-CPU counters of inject.bpf.c; never renumbered. */
enum sonde_inject_counter {
	SONDE_INJ_DONE = 0,		/* header inserted */
	SONDE_INJ_HAS_HEADER = 1,	/* the request carries its own traceparent */
	SONDE_INJ_SPLIT = 2,		/* head continues in a later send */
	SONDE_INJ_HEAD_TOO_LONG = 3,	/* request line or head end beyond the scanned bound */
	SONDE_INJ_PIPELINED = 4,	/* another request follows in the same send */
	SONDE_INJ_TOO_BIG = 5,		/* send larger than what is made linear (8 KiB) */
	SONDE_INJ_FAILED = 6,		/* push/pull helper refused: left untouched */
	SONDE_INJ_NOT_HTTP_PORT = 7,	/* connect of an HTTP process to a known non-HTTP port: left out */
	SONDE_INJ__MAX = 8,
};

#ifndef __BPF__
_Static_assert(sizeof(struct sonde_thread_ctx) == 40, "thread ctx size");
_Static_assert(sizeof(struct sonde_trace_ctx_event) == 64, "trace ctx event size");
_Static_assert(sizeof(struct sonde_event_hdr) == 16, "hdr size");
_Static_assert(sizeof(struct sonde_tuple) == 40, "tuple size");
_Static_assert(sizeof(struct sonde_data_event) == 56, "data event size");
_Static_assert(sizeof(struct sonde_conn_event) == 128, "conn event size");
_Static_assert(sizeof(struct sonde_close_event) == 32, "close event size");
_Static_assert(sizeof(struct sonde_exit_event) == 24, "exit event size");
_Static_assert(sizeof(struct sonde_cgroup_event) == 32, "cgroup event size");
_Static_assert(sizeof(struct sonde_io_end_event) == 48, "io end event size");
_Static_assert(sizeof(struct sonde_conn) == 104, "conn size");
_Static_assert(sizeof(struct sonde_db_call_event) == 56 + SONDE_DB_TEXT_MAX, "db call size");
_Static_assert(sizeof(struct sonde_tcp_bytes) == 16, "tcp bytes size");
_Static_assert(sizeof(struct sonde_sk_owner) == 56, "sk owner size");
_Static_assert(sizeof(struct sonde_tcp_stats) == 32 + 8 * 18 + 8 * 2 * SONDE_HIST_SLOTS,
	       "tcp stats size");
_Static_assert(sizeof(struct sonde_runq_stats) == 40 + 8 * SONDE_HIST_SLOTS, "runq stats size");
_Static_assert(sizeof(struct sonde_runq_task) == 32, "runq task size");
#endif

#endif
