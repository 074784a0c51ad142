/* The agent's configuration: command-line flags, OTEL_* and SONDE_*
 * environment variables, and the --help text. */
#ifndef SONDE_CONFIG_H
#define SONDE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "host/host.h"
#include "probe/loader.h"
#include "span/redact.h"

#define SONDE_VERSION "0.1.0"

struct config {
	const char *listen;
	bool print_spans;
	uint32_t pid;
	uint16_t port;
	const char *comm;
	const char *service_name;
	uint32_t capture_bytes;
	uint32_t ring_bytes;
	uint32_t max_conns;
	uint32_t max_series;
	uint32_t h2_max_streams;	/* HTTP/2 streams followed per connection */
	uint32_t h2_max_header_block;	/* bytes of one HTTP/2 header block */
	uint32_t max_routes_per_service;	/* http_route budget per service and family */
	bool no_host_metrics;
	bool no_metrics_gzip;		/* --no-metrics-gzip */
	struct host_opts host;		/* --path.*, --collector.textfile.directory */
	bool no_tcp_health;
	bool no_sched;
	bool runq_histogram;	/* --runqueue-histogram */
	bool no_db_uprobes;
	bool no_tls;
	enum loader_args_store args_store;	/* --syscall-args */
	enum loader_attach_mode attach_mode;	/* --attach-mode */
	const char *otlp_endpoint;	/* NULL: OTEL_EXPORTER_OTLP_ENDPOINT */
	bool no_inject;
	bool allow_second_agent;	/* start beside another agent, injection off */
	bool no_inject_learn;
	uint16_t inject_ports[16];	/* --inject-port, 0-terminated */
	struct redact url_redact;	/* --url-query, --url-query-keys */
	const char *containerd_sock;	/* --containerd-socket; NULL: no lookups */
	const char *containerd_ns;	/* --containerd-namespace */
	const char *docker_sock;	/* --docker-socket; NULL: none */
	const char *podman_sock;	/* --podman-socket; NULL: none */
	const char *crio_sock;		/* --crio-socket; NULL: none */
	uint32_t runtime_timeout_ms;	/* --runtime-timeout */
	bool metrics_pod_labels;	/* --metrics-pod-labels */
};

/* Fills c from argv and the environment. 0, or -EINVAL after printing why
 * on stderr. --help and --version print and exit(0). */
int config__parse(struct config *c, int argc, char **argv);

#endif
