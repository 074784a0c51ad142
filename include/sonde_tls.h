/* Shared by tls.bpf.c and user/probe/tls.c: the TLS tracer's counters. Values
 * are never renumbered. */
#ifndef SONDE_TLS_H
#define SONDE_TLS_H

enum sonde_tls_counter {
	SONDE_TLS_CNT_EVENTS = 0,	/* plaintext records written */
	SONDE_TLS_CNT_RING_DROPS = 1,	/* ring full */
	SONDE_TLS_CNT_UNBOUND = 2,	/* call with data whose socket is not known */
	SONDE_TLS_CNT_NO_CONN = 3,	/* socket no longer tracked (closed, fd reused) */
	SONDE_TLS_CNT_READ_FAIL = 4,	/* plaintext not readable from user memory */
	SONDE_TLS_CNT_NO_ENTRY = 5,	/* return without its entry (call began before attach) */
	SONDE_TLS_CNT_EXEC_DROPS = 6,	/* exec notifications lost (ring full) */
	/* SSLs over a BIO pair (bpf/lib/membio.h): */
	SONDE_TLS_CNT_MEMBIO_BOUND = 7,	/* bound to a socket by the ciphertext fed to them */
	SONDE_TLS_CNT_MEMBIO_NO_RECV = 8,	/* ciphertext fed, the thread received nothing */
	SONDE_TLS_CNT_MEMBIO_MISMATCH = 9,	/* ciphertext fed, not the thread's last receive */
	SONDE_TLS_CNT__MAX = 12,
};

#endif
