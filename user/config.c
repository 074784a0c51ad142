/* Command-line flags and environment variables → struct config. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "sonde.h"
#include "util/hostlock.h"
#include "util/log.h"

static const char usage[] =
"Usage: sonde [OPTIONS]\n"
"\n"
"eBPF observability agent: traces TCP traffic of every process on this host,\n"
"rebuilds HTTP/1.x requests and PostgreSQL, MySQL/MariaDB and Redis operations\n"
"into spans and serves RED metrics on /metrics.\n"
"No change to the observed programs. Needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN).\n"
"\n"
"Options:\n"
"  --listen HOST:PORT      serve /metrics and /healthz here (default 0.0.0.0:9464,\n"
"                          env SONDE_LISTEN; \"none\" disables the server)\n"
"  --print spans           print one JSON object per finished request on stdout\n"
"  --pid PID               trace only this process (filtered in the kernel; a PID of no\n"
"                          process is warned about, and whichever process gets it is traced)\n"
"  --port PORT             trace only connections with this local or remote port\n"
"                          (filtered in the kernel)\n"
"  --comm NAME             report only connections of processes whose comm is NAME\n"
"                          (decided at a connection's first record; the others are\n"
"                          handed back to the kernel)\n"
"  --service-name NAME     service_name for the traced process; needs --pid\n"
"                          (env OTEL_SERVICE_NAME is used the same way); without it\n"
"                          each process is named by its identity (README \"Identity\")\n"
"  --capture-bytes N       payload bytes captured per syscall, 64..4096\n"
"                          (default 1024, env SONDE_CAPTURE_BYTES)\n"
"  --ring-bytes N          event ring memory for all CPUs together, split into one\n"
"                          ring per CPU of at least 256 KiB, all of it resident in\n"
"                          the agent's RSS from the start (default 16777216)\n"
"  --max-connections N     connections followed in userspace, allocated as they come\n"
"                          (default 65536, the kernel's connection map size)\n"
"  --max-series N          cardinality cap per metric (default 2000)\n"
"  --max-routes-per-service N\n"
"                          distinct http_route values per service_name in each HTTP\n"
"                          family; after them a service's new routes become\n"
"                          \"/{overflow}\" (default 100, env SONDE_MAX_ROUTES_PER_SERVICE);\n"
"                          the same budget bounds gRPC service/method pairs\n"
"  --h2-max-streams N      concurrent HTTP/2 streams followed per connection; streams\n"
"                          beyond are counted, not traced (default 100, 1..65535,\n"
"                          env SONDE_H2_MAX_STREAMS)\n"
"  --h2-max-header-block N bytes of one HTTP/2 header block (HEADERS + CONTINUATION);\n"
"                          a larger one stops the connection's decoding, counted\n"
"                          (default 65536, 1024..1048576)\n"
"  --attach-mode MODE      hooks with several implementations. auto: payload capture at\n"
"                          the socket-level tracepoints sock_send_length/sock_recv_length\n"
"                          (Linux 6.3+), else by fexit on tcp_sendmsg/tcp_recvmsg (neither\n"
"                          attaches a syscall tracepoint: other syscalls keep their speed),\n"
"                          else at syscall tracepoints; tcp_sendmsg/tcp_recvmsg byte\n"
"                          accounting by fentry, else kprobe, else the capture hooks.\n"
"                          socket forces socket-level capture; fentry forces the fentry\n"
"                          byte hooks (capture: socket, else fentry); kprobe forces the\n"
"                          kprobe byte hooks (capture: socket, else syscall); tracepoint\n"
"                          forces syscall tracepoints for both. The chosen capture tier is\n"
"                          sonde_probe_info{hook=\"payload_capture\"}. A forced mode the\n"
"                          kernel cannot attach is an error (default auto)\n"
"  --syscall-args MODE     where in-flight syscall arguments are kept in the syscall\n"
"                          capture tier: auto (task-local storage when the kernel allows\n"
"                          it; else a hash), task, or hash; task or hash selects that\n"
"                          tier (default auto)\n"
"  --no-host-metrics       leave out the node_exporter-compatible node_* host metrics\n"
"                          (cpu, memory, disks, filesystems, network, ...) on /metrics\n"
"  --no-metrics-gzip       serve /metrics uncompressed even to clients that accept gzip\n"
"                          (Prometheus does; gzip costs 0.2-0.5 ms of CPU per 150 KiB page)\n"
"  --path.procfs DIR       where the host's /proc is for the node_* host metrics\n"
"                          (default /proc; node_exporter's flag; tracing always\n"
"                          uses the agent's own /proc)\n"
"  --path.sysfs DIR        where the host's /sys is for the node_* host metrics\n"
"                          (default /sys)\n"
"  --path.rootfs DIR       where the host's / is (default /): os-release, and the\n"
"                          filesystem collector's statfs(); the prefix is removed\n"
"                          from mountpoint labels\n"
"  --path.udev.data DIR    udev's database, for node_disk_info/device_mapper_info\n"
"                          labels (default /run/udev/data)\n"
"  --collector.textfile.directory DIR\n"
"                          export the *.prom files in DIR (node_exporter's textfile\n"
"                          collector: cron jobs write metrics there; a bad file sets\n"
"                          node_textfile_scrape_error 1, the page stays valid).\n"
"                          Unset: only node_textfile_scrape_error 0, as upstream\n"
"  --no-tcp-health         leave out the per-service TCP health metrics (sonde_tcp_*:\n"
"                          connections, connect failures, resets, retransmits, RTT)\n"
"  --no-sched              leave out run-queue wait per service (sonde_runqueue_*)\n"
"  --runqueue-histogram    also a histogram of each run-queue wait per service\n"
"                          (sonde_runqueue_latency_seconds); its hooks run on every\n"
"                          context switch of the host (0.4-1.3 us per HTTP request)\n"
"  --otlp-endpoint URL     send spans and metrics as OTLP/HTTP (protobuf) to URL/v1/traces\n"
"                          and URL/v1/metrics (env OTEL_EXPORTER_OTLP_ENDPOINT; unset: no\n"
"                          export). Also read: OTEL_EXPORTER_OTLP_{TRACES_,METRICS_}ENDPOINT,\n"
"                          _HEADERS, _COMPRESSION (gzip|none), _TIMEOUT (ms, 10000);\n"
"                          OTEL_BSP_MAX_EXPORT_BATCH_SIZE (512), OTEL_BSP_SCHEDULE_DELAY (ms,\n"
"                          5000), OTEL_BSP_MAX_QUEUE_SIZE (2048), OTEL_METRIC_EXPORT_INTERVAL\n"
"                          (ms, 60000), OTEL_TRACES_SAMPLER(_ARG) (parentbased_always_on),\n"
"                          OTEL_RESOURCE_ATTRIBUTES, SONDE_OTLP_RETRY_MAX_ELAPSED (ms, 60000)\n"
"  --no-inject             do not insert a W3C traceparent header into outgoing plaintext\n"
"                          HTTP/1.x requests (sockops + sk_msg; on by default); spans\n"
"                          are then linked in userspace only\n"
"  --inject-port PORT      inject into requests to this remote port from the start\n"
"                          (repeatable, up to 15); ports that client connections are\n"
"                          seen speaking HTTP/1.x to are added as they are learnt, and\n"
"                          the connection that taught it (or one older than the agent)\n"
"                          is injected from its next request on\n"
"  --no-inject-learn       inject only into requests to --inject-port / --port ports\n"
"  --allow-second-agent    start even when another sonde agent runs on this host (it\n"
"                          holds " HOSTLOCK_PATH "; without this flag the second agent\n"
"                          exits 1 naming the first one's pid); traceparent injection\n"
"                          is then off in this agent, since two agents' sockops/sk_msg\n"
"                          programs break each other's injection\n"
"  --no-db-uprobes        leave out the uprobes on libpq (PQsend*) and libmysqlclient /\n"
"                          libmariadb (mysql_real_query, ...): database spans then come\n"
"                          from the wire only, none for TLS connections\n"
"  --no-tls                leave out HTTPS: no uprobes on OpenSSL's SSL_read/SSL_write\n"
"                          (libssl.so* and static executables, found in /proc/*/maps)\n"
"  --url-query MODE        the query string of request targets (--print spans, OTLP\n"
"                          url.query and url.full; also each argument of OTLP's\n"
"                          process.command_line): redact (default) replaces with\n"
"                          REDACTED the values of sensitive keys: password, passwd, pwd,\n"
"                          secret, token, access_token, refresh_token, id_token, api_key,\n"
"                          apikey, key, auth, authorization, session, sessionid,\n"
"                          session_id, sig, signature, AWSAccessKeyId, X-Goog-Signature,\n"
"                          X-Amz-Signature, X-Amz-Credential, X-Amz-Security-Token, code,\n"
"                          credential, client_secret, private_token (any case, also\n"
"                          percent-encoded; pairs split on & and ;); keep leaves it as\n"
"                          sent; drop removes it, '?' included (env SONDE_URL_QUERY).\n"
"                          user:password in absolute-form targets always becomes\n"
"                          REDACTED:REDACTED\n"
"  --url-query-keys LIST   more sensitive keys, comma-separated, added to the defaults\n"
"                          (up to 16, env SONDE_URL_QUERY_KEYS)\n"
"  --containerd-socket PATH\n"
"                          containerd's socket, asked (gRPC, containers API) for the\n"
"                          kubelet's labels of each container seen in a process's cgroup\n"
"                          (default /run/containerd/containerd.sock, env\n"
"                          SONDE_CONTAINERD_SOCKET; \"none\" disables). An absent or silent\n"
"                          runtime is logged once and shown in sonde_runtime_info; the\n"
"                          Kubernetes API server is never asked\n"
"  --containerd-namespace NS\n"
"                          containerd namespace of the containers (default k8s.io)\n"
"  --docker-socket PATH    Docker's API socket, asked (GET /containers/<id>/json) for the\n"
"                          name and labels of docker-<id> containers (default\n"
"                          /var/run/docker.sock, env SONDE_DOCKER_SOCKET; \"none\" disables)\n"
"  --podman-socket PATH    podman's API socket (podman system service), the same for\n"
"                          libpod-<id> containers (default /run/podman/podman.sock, env\n"
"                          SONDE_PODMAN_SOCKET; \"none\" disables)\n"
"  --crio-socket PATH      CRI-O's info socket, asked (GET /containers/<id>, then the\n"
"                          pod's sandbox) for the kubelet's labels of crio-<id>\n"
"                          containers (default /var/run/crio/crio.sock, env\n"
"                          SONDE_CRIO_SOCKET; \"none\" disables)\n"
"  --runtime-timeout MS    bound on each runtime request, 50..30000 (default 1000)\n"
"  --metrics-pod-labels    also put k8s_pod_name and container_id on the per-service\n"
"                          series (RED, database, TCP, process, run queue)\n"
"                          (one series set per pod: mind the cardinality); they are\n"
"                          always on sonde_target_info and in OTLP resources\n"
"  --log-level LEVEL       debug, info, warn or error (default info, env SONDE_LOG_LEVEL)\n"
"  --version               print the version and exit\n"
"  -h, --help              this text\n"
"\n"
"Logs are JSON lines on stderr. SIGINT/SIGTERM detach every probe and exit.\n"
"\n"
"Examples:\n"
"  sonde                                  # host agent: every process, /metrics on :9464\n"
"  sonde --print spans --port 8080        # watch requests to/from port 8080 live\n"
"  sonde --print spans --pid 4242 --listen none\n"
"  sonde --print spans --comm nginx | jq 'select(.duration_ms > 100)'\n"
"  curl -s localhost:9464/metrics | grep http_server_request_duration\n";

static int parse_u32(const char *s, const char *what, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || !*s || *end || v < min || v > max) {
		fprintf(stderr, "sonde: invalid %s '%s' (want %u..%u)\n", what, s, min, max);
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

int config__parse(struct config *o, int argc, char **argv)
{
	enum { O_LISTEN = 256, O_PRINT, O_PID, O_PORT, O_COMM, O_SVC, O_CAP, O_RING, O_CONNS,
	       O_SERIES, O_LOG, O_VERSION, O_ARGS, O_ATTACH, O_NO_HOST, O_NO_TCP, O_NO_SCHED,
	       O_OTLP, O_RUNQ_HIST,
	       O_NO_INJECT, O_INJECT_PORT, O_NO_INJECT_LEARN, O_NO_DBU = 300,
	       O_NO_TLS, O_URL_QUERY, O_URL_QUERY_KEYS, O_ROUTES, O_SECOND,
	       O_H2_STREAMS, O_H2_BLOCK, O_CTRD, O_CTRD_NS,
	       O_RT_TIMEOUT, O_POD_LABELS, O_DOCKER, O_PODMAN, O_CRIO,
	       O_PROCFS, O_SYSFS, O_ROOTFS, O_UDEV, O_TEXTFILE, O_NO_GZIP };
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "print", required_argument, NULL, O_PRINT },
		{ "pid", required_argument, NULL, O_PID },
		{ "port", required_argument, NULL, O_PORT },
		{ "comm", required_argument, NULL, O_COMM },
		{ "service-name", required_argument, NULL, O_SVC },
		{ "capture-bytes", required_argument, NULL, O_CAP },
		{ "ring-bytes", required_argument, NULL, O_RING },
		{ "max-connections", required_argument, NULL, O_CONNS },
		{ "max-series", required_argument, NULL, O_SERIES },
		{ "max-routes-per-service", required_argument, NULL, O_ROUTES },
		{ "h2-max-streams", required_argument, NULL, O_H2_STREAMS },
		{ "h2-max-header-block", required_argument, NULL, O_H2_BLOCK },
		{ "log-level", required_argument, NULL, O_LOG },
		{ "syscall-args", required_argument, NULL, O_ARGS },
		{ "attach-mode", required_argument, NULL, O_ATTACH },
		{ "no-host-metrics", no_argument, NULL, O_NO_HOST },
		{ "no-metrics-gzip", no_argument, NULL, O_NO_GZIP },
		{ "no-tcp-health", no_argument, NULL, O_NO_TCP },
		{ "no-sched", no_argument, NULL, O_NO_SCHED },
		{ "runqueue-histogram", no_argument, NULL, O_RUNQ_HIST },
		{ "otlp-endpoint", required_argument, NULL, O_OTLP },
		{ "no-inject", no_argument, NULL, O_NO_INJECT },
		{ "inject-port", required_argument, NULL, O_INJECT_PORT },
		{ "no-inject-learn", no_argument, NULL, O_NO_INJECT_LEARN },
		{ "no-db-uprobes", no_argument, NULL, O_NO_DBU },
		{ "no-tls", no_argument, NULL, O_NO_TLS },
		{ "url-query", required_argument, NULL, O_URL_QUERY },
		{ "url-query-keys", required_argument, NULL, O_URL_QUERY_KEYS },
		{ "allow-second-agent", no_argument, NULL, O_SECOND },
		{ "containerd-socket", required_argument, NULL, O_CTRD },
		{ "containerd-namespace", required_argument, NULL, O_CTRD_NS },
		{ "runtime-timeout", required_argument, NULL, O_RT_TIMEOUT },
		{ "metrics-pod-labels", no_argument, NULL, O_POD_LABELS },
		{ "docker-socket", required_argument, NULL, O_DOCKER },
		{ "podman-socket", required_argument, NULL, O_PODMAN },
		{ "crio-socket", required_argument, NULL, O_CRIO },
		{ "path.procfs", required_argument, NULL, O_PROCFS },
		{ "path.sysfs", required_argument, NULL, O_SYSFS },
		{ "path.rootfs", required_argument, NULL, O_ROOTFS },
		{ "path.udev.data", required_argument, NULL, O_UDEV },
		{ "collector.textfile.directory", required_argument, NULL, O_TEXTFILE },
		{ "version", no_argument, NULL, O_VERSION },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *env, *level = getenv("SONDE_LOG_LEVEL");
	const char *url_query = getenv("SONDE_URL_QUERY"), *url_query_what = "SONDE_URL_QUERY";
	const char *url_keys = getenv("SONDE_URL_QUERY_KEYS"), *url_keys_what = "SONDE_URL_QUERY_KEYS";
	enum redact_mode url_mode = REDACT_REDACT;
	uint32_t v;
	int c;

	o->listen = getenv("SONDE_LISTEN") ? getenv("SONDE_LISTEN") : "0.0.0.0:9464";
	o->capture_bytes = SONDE_CAPTURE_DEFAULT;
	o->ring_bytes = 16u << 20;
	o->max_conns = 65536;
	o->max_series = 2000;
	o->max_routes_per_service = 100;
	o->h2_max_streams = 100;
	o->h2_max_header_block = 65536;
	env = getenv("SONDE_H2_MAX_STREAMS");
	if (env && parse_u32(env, "SONDE_H2_MAX_STREAMS", 1, 65535, &o->h2_max_streams))
		return -EINVAL;
	o->containerd_sock = getenv("SONDE_CONTAINERD_SOCKET") ? getenv("SONDE_CONTAINERD_SOCKET") :
			     "/run/containerd/containerd.sock";
	o->containerd_ns = "k8s.io";
	o->docker_sock = getenv("SONDE_DOCKER_SOCKET") ? getenv("SONDE_DOCKER_SOCKET") : "/var/run/docker.sock";
	o->podman_sock = getenv("SONDE_PODMAN_SOCKET") ? getenv("SONDE_PODMAN_SOCKET") :
			 "/run/podman/podman.sock";
	o->crio_sock = getenv("SONDE_CRIO_SOCKET") ? getenv("SONDE_CRIO_SOCKET") : "/var/run/crio/crio.sock";
	o->runtime_timeout_ms = 1000;
	env = getenv("SONDE_CAPTURE_BYTES");
	if (env && parse_u32(env, "SONDE_CAPTURE_BYTES", 64, SONDE_CAPTURE_MAX, &o->capture_bytes))
		return -EINVAL;
	env = getenv("SONDE_MAX_ROUTES_PER_SERVICE");
	if (env && parse_u32(env, "SONDE_MAX_ROUTES_PER_SERVICE", 1, 1u << 20,
			     &o->max_routes_per_service))
		return -EINVAL;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case O_LISTEN: o->listen = optarg; break;
		case O_PRINT:
			if (strcmp(optarg, "spans") != 0) {
				fprintf(stderr, "sonde: --print takes 'spans'\n");
				return -EINVAL;
			}
			o->print_spans = true;
			break;
		case O_PID:
			if (parse_u32(optarg, "--pid", 1, 0x7fffffff, &o->pid))
				return -EINVAL;
			break;
		case O_PORT:
			if (parse_u32(optarg, "--port", 1, 65535, &v))
				return -EINVAL;
			o->port = (uint16_t)v;
			break;
		case O_COMM: o->comm = optarg; break;
		case O_SVC: o->service_name = optarg; break;
		case O_CAP:
			if (parse_u32(optarg, "--capture-bytes", 64, SONDE_CAPTURE_MAX, &o->capture_bytes))
				return -EINVAL;
			break;
		case O_RING:
			if (parse_u32(optarg, "--ring-bytes", 256 * 1024, 1u << 30, &o->ring_bytes))
				return -EINVAL;
			break;
		case O_CONNS:
			if (parse_u32(optarg, "--max-connections", 16, 1u << 22, &o->max_conns))
				return -EINVAL;
			break;
		case O_SERIES:
			if (parse_u32(optarg, "--max-series", 1, 1u << 20, &o->max_series))
				return -EINVAL;
			break;
		case O_H2_STREAMS:
			if (parse_u32(optarg, "--h2-max-streams", 1, 65535, &o->h2_max_streams))
				return -EINVAL;
			break;
		case O_H2_BLOCK:
			if (parse_u32(optarg, "--h2-max-header-block", 1024, 1u << 20,
				      &o->h2_max_header_block))
				return -EINVAL;
			break;
		case O_ROUTES:
			if (parse_u32(optarg, "--max-routes-per-service", 1, 1u << 20,
				      &o->max_routes_per_service))
				return -EINVAL;
			break;
		case O_LOG: level = optarg; break;
		case O_NO_HOST: o->no_host_metrics = true; break;
		case O_NO_GZIP: o->no_metrics_gzip = true; break;
		case O_NO_TCP: o->no_tcp_health = true; break;
		case O_NO_SCHED: o->no_sched = true; break;
		case O_RUNQ_HIST: o->runq_histogram = true; break;
		case O_OTLP: o->otlp_endpoint = optarg; break;
		case O_NO_INJECT: o->no_inject = true; break;
		case O_NO_INJECT_LEARN: o->no_inject_learn = true; break;
		case O_INJECT_PORT: {
			size_t n = 0;

			while (o->inject_ports[n])
				n++;
			if (parse_u32(optarg, "--inject-port", 1, 65535, &v))
				return -EINVAL;
			if (n + 1 >= sizeof(o->inject_ports) / sizeof(o->inject_ports[0])) {
				fprintf(stderr, "sonde: too many --inject-port\n");
				return -EINVAL;
			}
			o->inject_ports[n] = (uint16_t)v;
			break;
		}
		case O_NO_DBU: o->no_db_uprobes = true; break;
		case O_NO_TLS: o->no_tls = true; break;
		case O_URL_QUERY:
			url_query = optarg;
			url_query_what = "--url-query";
			break;
		case O_URL_QUERY_KEYS:
			url_keys = optarg;
			url_keys_what = "--url-query-keys";
			break;
		case O_SECOND: o->allow_second_agent = true; break;
		case O_CTRD: o->containerd_sock = optarg; break;
		case O_CTRD_NS:
			if (!optarg[0] || strlen(optarg) > 76) {
				fprintf(stderr, "sonde: --containerd-namespace takes a name of 1..76 bytes\n");
				return -EINVAL;
			}
			o->containerd_ns = optarg;
			break;
		case O_RT_TIMEOUT:
			if (parse_u32(optarg, "--runtime-timeout", 50, 30000, &o->runtime_timeout_ms))
				return -EINVAL;
			break;
		case O_POD_LABELS: o->metrics_pod_labels = true; break;
		case O_DOCKER: o->docker_sock = optarg; break;
		case O_PODMAN: o->podman_sock = optarg; break;
		case O_CRIO: o->crio_sock = optarg; break;
		case O_PROCFS: o->host.procfs = optarg; break;
		case O_SYSFS: o->host.sysfs = optarg; break;
		case O_ROOTFS: o->host.rootfs = optarg; break;
		case O_UDEV: o->host.udev_data = optarg; break;
		case O_TEXTFILE: o->host.textfile_dir = optarg; break;
		case O_ATTACH: {
			static const char *const modes[] = { "auto", "fentry", "kprobe", "tracepoint",
							     "socket" };
			int i;

			for (i = 0; i < 5 && strcmp(optarg, modes[i]) != 0; i++)
				;
			if (i == 5) {
				fprintf(stderr, "sonde: --attach-mode takes auto, socket, fentry, kprobe or "
						"tracepoint\n");
				return -EINVAL;
			}
			o->attach_mode = (enum loader_attach_mode)i;
			break;
		}
		case O_ARGS:
			if (strcmp(optarg, "auto") == 0)
				o->args_store = ARGS_AUTO;
			else if (strcmp(optarg, "task") == 0)
				o->args_store = ARGS_TASK;
			else if (strcmp(optarg, "hash") == 0)
				o->args_store = ARGS_HASH;
			else {
				fprintf(stderr, "sonde: --syscall-args takes auto, task or hash\n");
				return -EINVAL;
			}
			break;
		case O_VERSION: printf("sonde %s\n", SONDE_VERSION); exit(0);
		case 'h': fputs(usage, stdout); exit(0);
		default: fputs(usage, stderr); return -EINVAL;
		}
	}
	{
		const char *const paths[] = { o->host.procfs, o->host.sysfs, o->host.rootfs,
					      o->host.udev_data, o->host.textfile_dir };

		for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
			if (paths[i] && (strlen(paths[i]) > HOST_PATH_MAX || (*paths[i] && *paths[i] != '/'))) {
				fprintf(stderr, "sonde: invalid path '%s' (want an absolute path of at most %d bytes)\n",
					paths[i], HOST_PATH_MAX);
				return -EINVAL;
			}
	}
	if (optind < argc) {
		fprintf(stderr, "sonde: unexpected argument '%s' (see --help)\n", argv[optind]);
		return -EINVAL;
	}
	if (url_query && redact__parse_mode(url_query, &url_mode)) {
		fprintf(stderr, "sonde: invalid %s '%s' (want keep, redact or drop)\n", url_query_what,
			url_query);
		return -EINVAL;
	}
	if (redact__init(&o->url_redact, url_mode, url_keys)) {
		fprintf(stderr, "sonde: invalid %s '%s' (want comma-separated key names, at most %d,"
			" each 1..%d bytes, without spaces or any of =&;#?%%)\n",
			url_keys_what, url_keys, REDACT_EXTRA_MAX, REDACT_KEY_MAX - 1);
		return -EINVAL;
	}
	if (level) {
		static const char *const names[] = { "debug", "info", "warn", "error" };
		int i;

		for (i = 0; i < 4 && strcmp(level, names[i]) != 0; i++)
			;
		if (i == 4) {
			fprintf(stderr, "sonde: unknown log level '%s'\n", level);
			return -EINVAL;
		}
		log__set_level((enum log_level)i);
	}
	/* A service name only makes sense for one process; with every process
	 * traced, each keeps its executable's name. */
	if (!o->service_name && o->pid && getenv("OTEL_SERVICE_NAME") && *getenv("OTEL_SERVICE_NAME"))
		o->service_name = getenv("OTEL_SERVICE_NAME");
	{
		const char **socks[] = { &o->containerd_sock, &o->docker_sock, &o->podman_sock,
					 &o->crio_sock };

		for (size_t i = 0; i < sizeof(socks) / sizeof(socks[0]); i++)
			if (*socks[i] && (!(*socks[i])[0] || strcmp(*socks[i], "none") == 0))
				*socks[i] = NULL;
	}
	if (o->service_name && !o->pid) {
		fprintf(stderr, "sonde: --service-name needs --pid\n");
		return -EINVAL;
	}
	return 0;
}
