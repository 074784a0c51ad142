// SPDX-License-Identifier: GPL-2.0
/* Database client library calls: uprobes on libpq's PQsend* and
 * libmysqlclient/libmariadb's query functions record the SQL text as the
 * application passed it, before any TLS, one record per call. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "sonde.h"
#include "lib/event_hdr.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 self_tgid = 0;	/* the agent: never traced */
const volatile __u32 filter_tgid = 0;	/* 0 = every process */

/* Records for the daemon (struct sonde_db_call_event); one ring shared by
 * all CPUs: calls are rare next to syscalls. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} db_calls SEC(".maps");

/* index 0: records lost because the ring was full; 1: text unreadable */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} db_counters SEC(".maps");

static __always_inline void count(__u32 i)
{
	__u64 *v = bpf_map_lookup_elem(&db_counters, &i);

	if (v)
		(*v)++;
}

/* text: a NUL-terminated string (len < 0) or len bytes; name: an optional
 * second string put first, NUL-separated (PQsendPrepare's statement name). */
static __always_inline int record(__u8 func, const void *conn, const char *name,
				  const char *text, long len)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct sonde_db_call_event *e;
	long n = 0, m;

	if (tgid == self_tgid || (filter_tgid && tgid != filter_tgid))
		return 0;
	e = bpf_ringbuf_reserve(&db_calls, sizeof(*e), 0);
	if (!e) {
		count(0);
		return 0;
	}
	event_hdr__set(&e->hdr, SONDE_OP_DB_CALL, 0, sizeof(*e));
	e->conn = (__u64)conn;
	e->tgid = tgid;
	e->tid = (__u32)id;
	e->func = func;
	e->pad[0] = e->pad[1] = e->pad[2] = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	if (name) {
		/* the name, its NUL kept as the separator */
		n = bpf_probe_read_user_str(e->text, 128, name);
		if (n < 0) {
			count(1);
			n = 0;
		}
	}
	if (text && n >= 0 && n < 128) {
		char *dst = e->text + (n & 127);

		if (len < 0) {
			m = bpf_probe_read_user_str(dst, SONDE_DB_TEXT_MAX - 128, text);
			m = m > 0 ? m - 1 : 0;	/* without the NUL */
		} else {
			__u32 lim = len < SONDE_DB_TEXT_MAX - 128 - 1 ? (__u32)len
								  : SONDE_DB_TEXT_MAX - 128 - 1;

			if (lim > SONDE_DB_TEXT_MAX - 128 - 1)	/* for the verifier */
				lim = SONDE_DB_TEXT_MAX - 128 - 1;
			m = lim;
			if (bpf_probe_read_user(dst, lim, text) < 0)
				m = -1;
			else
				e->text[(n + m) & (SONDE_DB_TEXT_MAX - 1)] = 0;
		}
		if (m < 0) {
			count(1);
			m = 0;
		}
		n += m;
	} else if (name && n > 0) {
		n--;	/* name only: drop its NUL from the length */
	}
	e->text_len = (__u32)n;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(pq_send_query, void *conn, const char *query)
{
	return record(SONDE_DB_PQ_SEND_QUERY, conn, NULL, query, -1);
}

SEC("uprobe")
int BPF_KPROBE(pq_send_query_params, void *conn, const char *command)
{
	return record(SONDE_DB_PQ_SEND_QUERY_PARAMS, conn, NULL, command, -1);
}

SEC("uprobe")
int BPF_KPROBE(pq_send_prepare, void *conn, const char *name, const char *query)
{
	return record(SONDE_DB_PQ_SEND_PREPARE, conn, name, query, -1);
}

SEC("uprobe")
int BPF_KPROBE(pq_send_query_prepared, void *conn, const char *name)
{
	return record(SONDE_DB_PQ_SEND_QUERY_PREPARED, conn, name, NULL, -1);
}

SEC("uprobe")
int BPF_KPROBE(mysql_real_query, void *mysql, const char *q, unsigned long len)
{
	return record(SONDE_DB_MYSQL_REAL_QUERY, mysql, NULL, q, (long)len);
}

SEC("uprobe")
int BPF_KPROBE(mysql_send_query, void *mysql, const char *q, unsigned long len)
{
	return record(SONDE_DB_MYSQL_SEND_QUERY, mysql, NULL, q, (long)len);
}

SEC("uprobe")
int BPF_KPROBE(mysql_stmt_prepare, void *stmt, const char *q, unsigned long len)
{
	return record(SONDE_DB_MYSQL_STMT_PREPARE, stmt, NULL, q, (long)len);
}

SEC("uprobe")
int BPF_KPROBE(mysql_stmt_execute, void *stmt)
{
	return record(SONDE_DB_MYSQL_STMT_EXECUTE, stmt, NULL, NULL, -1);
}
