#!/usr/bin/env bash
# sonde benchmark: what does tracing cost an nginx serving a small static page?
#
# Three configurations, interleaved within one invocation, BENCH_ROUNDS times:
#   none   no tracer running
#   floor  build/sonde-floor: count-only BPF programs on the syscall
#          tracepoints sonde's syscall capture tier uses (the cost of merely
#          being attached there; the default socket tier uses none of them)
#   agent  build/sonde tracing every process, /metrics on a loopback port
#   export the agent again, also exporting spans and metrics over OTLP/HTTP to a
#          local sink (a small Python server that answers 200 and discards
#          the body), with --inject-port <nginx port>: every request wrk sends
#          gets a traceparent header inserted by sk_msg (wrk is a traced
#          client whose sockets connect after the agent started)
# Each run drives nginx with wrk (keep-alive) for BENCH_SECONDS and records
# Requests/sec; agent runs also record the agent's CPU time, peak RSS, ring
# buffer events/drops and server spans vs. requests. A summary with medians is
# compared against the stated goals. A missed goal is reported, not an error:
# the exit status is non-zero only when something failed to run.
#
# Usage (as root, from anywhere): scripts/bench.sh   or   make bench
# Environment:
#   BENCH_SECONDS=10      wrk duration per run
#   BENCH_ROUNDS=5        rounds (each round runs all the configurations)
#   BENCH_CONNECTIONS=16  wrk connections      BENCH_THREADS=1  wrk threads
#   BENCH_WARMUP=2        unmeasured wrk warm-up before round 1 (0 = none)
#   BENCH_ORDER=fixed     fixed: none,floor,agent every round;
#                         rotate: round r starts r-1 places later
#   BENCH_PIN=1           pin nginx to CPU 0 and wrk to CPU 1 (needs ≥ 2 CPUs);
#                         tracers are never pinned. 0 = no pinning
#   BENCH_ACCESS_LOG=0    1 = nginx writes an access log (in the temp dir)
#   BENCH_SENDFILE=on     nginx sendfile on|off
#   BENCH_SONDE, BENCH_FLOOR  agent / floor binaries (default build/sonde,
#                         build/sonde-floor), e.g. to compare two builds
#   BENCH_BASE            a second agent build (e.g. the previous commit's) run as
#                         two more configurations, base and bexport (as agent and
#                         export), in the same rounds: before/after side by side
#   BENCH_KEEP=0          1 = keep the temp dir (logs, wrk output) for inspection
#   BENCH_QUIET_WAIT=0    before each run, wait up to this many seconds until no
#                         other sonde/sonde-floor process runs (e.g. concurrent
#                         tests) and the CPUs are < 10% busy. Noisy runs are
#                         flagged in the table either way
#   BENCH_DD_ROUNDS=5     unrelated-syscall tax section: dd bs=1 under none, agent
#                         (socket tier), agent --attach-mode tracepoint, floor,
#                         interleaved; ratio to none (goal: agent <= 1.03); 0 = skip
#   BENCH_DD_COUNT=1000000  bytes dd copies (2 syscalls each)
#   BENCH_BPF_SECONDS=5   BPF ns per request per program (bpf_stats, BENCH_BPF_ROUNDS=3 rounds,
#                         tests/bench/bpf_cost.py); 0 = skip
#   BENCH_OTLP_SECONDS=4  OTLP span-encoding section (build/otlp-bench); 0 = skip
#   BENCH_H2_SECONDS=10   HTTP/2 section: h2load against nginx (http2, cleartext),
#                         none vs agent interleaved for BENCH_H2_ROUNDS (default
#                         BENCH_ROUNDS) rounds of this many seconds; 0 = skip
#   BENCH_LOOP_REQUESTS=300000  per round, bpf_cost.py --loop (build/sockloop: one
#                         thread as client and server, steadier per-call figures); 0 = skip
#   BENCH_IDLE_CPU_SECONDS=10  an idle agent's CPU per second (BENCH_IDLE_CPU_ROUNDS=3
#                         rounds, with BENCH_BASE both builds each round); 0 = skip
#   BENCH_PARSER_SECONDS=2  HTTP/1 head parser alone (build/http1-bench); 0 = skip
#   BENCH_SCRAPES=200     final section: /metrics scrapes of sonde and of
#                         prometheus-node-exporter (side by side, interleaved,
#                         no wrk load) to compare the cost of a scrape, in
#                         BENCH_SCRAPE_ROUNDS=5 rounds: over one kept
#                         connection as Prometheus scrapes (plain, then gzip),
#                         and one curl process per scrape; with the
#                         per-collector CPU of build/sonde-hostdump; 0 = skip
#   BENCH_ONLY_SCRAPE=0   1 = run only that section
#   BENCH_IDLE_CONNS=10000  RSS at N idle keep-alive connections
#                         (tests/bench/idle_rss.py): the agent's memory with 0
#                         and with N connections to nginx that each sent one
#                         request and stay open, in BENCH_IDLE_ROUNDS=3 rounds
#                         (with BENCH_BASE, both builds in each round); 0 = skip
#   BENCH_ONLY_IDLE=0     1 = run only that section
set -euo pipefail

cd "$(dirname "$0")/.."

RUN_SECONDS=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-5}
CONNS=${BENCH_CONNECTIONS:-16}
THREADS=${BENCH_THREADS:-1}
WARMUP=${BENCH_WARMUP:-2}
ORDER=${BENCH_ORDER:-fixed}
PIN=${BENCH_PIN:-1}
ACCESS_LOG=${BENCH_ACCESS_LOG:-0}
SENDFILE=${BENCH_SENDFILE:-on}
KEEP=${BENCH_KEEP:-0}
QUIET_WAIT=${BENCH_QUIET_WAIT:-0}
SCRAPES=${BENCH_SCRAPES:-200}
ONLY_SCRAPE=${BENCH_ONLY_SCRAPE:-0}
ONLY_IDLE=${BENCH_ONLY_IDLE:-0}
IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
IDLE_ROUNDS=${BENCH_IDLE_ROUNDS:-3}
ATTACH_TIMEOUT=30 # seconds a tracer may take to attach
STOP_TIMEOUT=10   # seconds a process may take to exit after SIGTERM
SETTLE=1          # seconds after wrk before the last agent scrape (spans in flight)

SONDE=${BENCH_SONDE:-build/sonde}
FLOOR=${BENCH_FLOOR:-build/sonde-floor}
BASE=${BENCH_BASE:-}
CONFIGS=(none floor agent export)
[ -z "$BASE" ] || CONFIGS=(none floor base agent bexport export)

die() {
	echo "bench: error: $*" >&2
	exit 1
}
note() { echo "bench: $*" >&2; }

# ---- preflight ----
for v in RUN_SECONDS ROUNDS CONNS THREADS WARMUP QUIET_WAIT SCRAPES IDLE_CONNS IDLE_ROUNDS; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
((RUN_SECONDS >= 1 && ROUNDS >= 1 && CONNS >= 1 && THREADS >= 1)) ||
	die "BENCH_SECONDS, BENCH_ROUNDS, BENCH_CONNECTIONS and BENCH_THREADS must be ≥ 1"
((CONNS >= THREADS)) || die "BENCH_CONNECTIONS must be ≥ BENCH_THREADS"
[[ $ORDER == fixed || $ORDER == rotate ]] || die "BENCH_ORDER must be fixed or rotate"
[[ $SENDFILE == on || $SENDFILE == off ]] || die "BENCH_SENDFILE must be on or off"
[[ $PIN == 0 || $PIN == 1 ]] || die "BENCH_PIN must be 0 or 1"
[[ $ACCESS_LOG == 0 || $ACCESS_LOG == 1 ]] || die "BENCH_ACCESS_LOG must be 0 or 1"
[ "$(id -u)" -eq 0 ] || die "must run as root (BPF, tracefs)"
[ -x "$SONDE" ] || die "$SONDE missing; run 'make all' first"
[ -x "$FLOOR" ] || die "$FLOOR missing; run 'make all' first"
[ -z "$BASE" ] || [ -x "$BASE" ] || die "BENCH_BASE=$BASE is not an executable"
for tool in nginx wrk curl python3 getconf; do
	command -v "$tool" >/dev/null || die "'$tool' not found (scripts/install-deps.sh installs it)"
done
NCPU=$(nproc)
if ((PIN == 1)) && ((NCPU < 2)); then
	note "only $NCPU CPU; not pinning"
	PIN=0
fi
if ((PIN == 1)); then
	command -v taskset >/dev/null || die "taskset not found (util-linux); or set BENCH_PIN=0"
	NGINX_PIN=(taskset -c 0)
	WRK_PIN=(taskset -c 1)
	PIN_DESC="nginx on CPU 0, wrk on CPU 1, tracers unpinned"
else
	NGINX_PIN=()
	WRK_PIN=()
	PIN_DESC="none"
fi
CLK_TCK=$(getconf CLK_TCK)
if [ ! -d /sys/kernel/tracing/events/syscalls ]; then
	mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
	[ -d /sys/kernel/tracing/events/syscalls ] ||
		die "tracefs syscall events unavailable at /sys/kernel/tracing (mount failed?)"
fi

# ---- process bookkeeping and cleanup ----
WORK=""
NGINX_PID=""
TRACER_PID=""
WRK_PID=""
NODE_EXPORTER_PID="" # scrape-cost section
SINK_PID=""          # OTLP sink of the export configuration

# True when PID has exited (gone, or a zombie waiting to be reaped).
proc_exited() {
	local st
	[ -r "/proc/$1/stat" ] || return 0
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 0
	[ -z "$st" ] || [ "$st" = Z ]
}

# stop_pid PID NAME: SIGTERM, wait up to STOP_TIMEOUT, SIGKILL if needed, reap.
# Sets STOP_RC to the exit status; returns 1 if it had to be killed.
STOP_RC=0
stop_pid() {
	local pid=$1 name=$2 i=0
	STOP_RC=0
	kill -TERM "$pid" 2>/dev/null || true
	while ! proc_exited "$pid"; do
		if ((i >= STOP_TIMEOUT * 10)); then
			note "$name (pid $pid) did not exit within ${STOP_TIMEOUT}s of SIGTERM; killing it"
			kill -KILL "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
			STOP_RC=137
			return 1
		fi
		sleep 0.1
		i=$((i + 1))
	done
	wait "$pid" 2>/dev/null || STOP_RC=$?
	return 0
}

stop_nginx() { # sets STOP_RC (137 if nginx or a worker had to be killed)
	local kids k rc
	STOP_RC=0
	[ -n "$NGINX_PID" ] || return 0
	kids=$(pgrep -P "$NGINX_PID" 2>/dev/null || true)
	stop_pid "$NGINX_PID" nginx || true
	rc=$STOP_RC
	NGINX_PID=""
	# Workers exit with the master; make sure none was left behind.
	for k in $kids; do
		if ! proc_exited "$k"; then
			sleep 0.5
			if ! proc_exited "$k"; then
				note "nginx worker $k outlived its master; killing it"
				kill -KILL "$k" 2>/dev/null || true
				rc=137
			fi
		fi
	done
	STOP_RC=$rc
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[ -n "$WRK_PID" ] && { stop_pid "$WRK_PID" wrk || true; }
	[ -n "$TRACER_PID" ] && { stop_pid "$TRACER_PID" tracer || true; }
	[ -n "$NODE_EXPORTER_PID" ] && { stop_pid "$NODE_EXPORTER_PID" node_exporter || true; }
	[ -n "$SINK_PID" ] && { stop_pid "$SINK_PID" otlp-sink || true; }
	stop_nginx
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		if ((KEEP == 1)); then
			note "kept $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'note "interrupted"; exit 130' INT
trap 'note "terminated"; exit 143' TERM

WORK=$(mktemp -d /tmp/sonde-bench.XXXXXX)
chmod 755 "$WORK" # nginx workers run as nobody and must read the page

# A free loopback TCP port below the ephemeral range (so wrk's and other
# tests' client ports cannot collide with it), not equal to any given port.
free_port() {
	python3 - "$@" <<'PY'
import random, socket, sys
avoid = {int(a) for a in sys.argv[1:]}
for _ in range(500):
    p = random.randint(20000, 29999)
    if p in avoid:
        continue
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    sys.exit(0)
sys.exit("no free port found")
PY
}

# Other tracers on the box skew every configuration; warn rather than fail.
other_tracers() {
	local p out=""
	for p in $(pgrep -x sonde 2>/dev/null; pgrep -x sonde-floor 2>/dev/null); do
		[ "$p" = "$TRACER_PID" ] && continue
		out+=" $p"
	done
	echo "$out"
}

# ---- nginx ----
PORT=$(free_port)
mkdir -p "$WORK/html" "$WORK/tmp"
python3 - "$WORK/html/index.html" <<'PY'
import sys
head = "<!DOCTYPE html>\n<html><head><title>sonde bench</title></head><body>\n<p>"
tail = "</p>\n</body></html>\n"
filler = ("The quick brown fox jumps over the lazy dog. " * 20)[: 600 - len(head) - len(tail)]
open(sys.argv[1], "w").write(head + filler + tail)
PY
PAGE_BYTES=$(stat -c %s "$WORK/html/index.html")
chmod -R a+rX "$WORK/html"
if ((ACCESS_LOG == 1)); then
	ACCESS_DIRECTIVE="access_log $WORK/access.log;"
	ACCESS_DESC="on ($WORK/access.log)"
else
	ACCESS_DIRECTIVE="access_log off;"
	ACCESS_DESC="off"
fi
cat >"$WORK/nginx.conf" <<EOF
# generated by scripts/bench.sh
user nobody nogroup;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/error.log warn;
events { worker_connections 1024; }
http {
    default_type text/html;
    $ACCESS_DIRECTIVE
    sendfile $SENDFILE;
    keepalive_timeout 65s;
    keepalive_requests 1000;
    client_body_temp_path $WORK/tmp/body;
    proxy_temp_path $WORK/tmp/proxy;
    fastcgi_temp_path $WORK/tmp/fastcgi;
    uwsgi_temp_path $WORK/tmp/uwsgi;
    scgi_temp_path $WORK/tmp/scgi;
    server {
        listen 127.0.0.1:$PORT;
        root $WORK/html;
        location / { index index.html; }
    }
}
EOF
URL="http://127.0.0.1:$PORT/"

"${NGINX_PIN[@]}" nginx -e "$WORK/error.log" -c "$WORK/nginx.conf" -p "$WORK/" \
	-g 'daemon off;' >"$WORK/nginx.out" 2>&1 &
NGINX_PID=$!
for ((i = 0; ; i++)); do
	if proc_exited "$NGINX_PID"; then
		cat "$WORK/nginx.out" "$WORK/error.log" >&2 2>/dev/null || true
		NGINX_PID=""
		die "nginx exited during start-up"
	fi
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$URL" || true)
	[ "$code" = 200 ] && break
	((i < 100)) || die "nginx not serving $URL after 10 s (last status $code)"
	sleep 0.1
done
NGINX_WORKER=$(pgrep -P "$NGINX_PID" | head -n 1 || true)
[ -n "$NGINX_WORKER" ] || die "cannot find the nginx worker process"

# ---- OTLP sink for the export configuration (tests/bench/otlp_sink.py) ----
SINK_PORT=$(free_port "$PORT")
python3 tests/bench/otlp_sink.py "$SINK_PORT" >"$WORK/otlp-sink.log" 2>&1 &
SINK_PID=$!
for ((i = 0; ; i++)); do
	proc_exited "$SINK_PID" && { cat "$WORK/otlp-sink.log" >&2; SINK_PID=""; die "OTLP sink exited during start-up"; }
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 -X POST --data-binary '' \
		"http://127.0.0.1:$SINK_PORT/v1/traces" || true)
	[ "$code" = 200 ] && break
	((i < 100)) || die "OTLP sink not answering on port $SINK_PORT after 10 s"
	sleep 0.1
done

# ---- one run ----
# Per-run results, tab-separated, one line per run (see the header below).
RESULTS="$WORK/results.tsv"
printf 'round\tconfig\trps\tp99_ms\trequests\terrors\twall_s\tcpu_s\trss_mib\tevents\tdrops\tspans\tspans_kind_server\tfloor_hits\tnginx_cpu_s\twrk_cpu_s\tother_cpu_pct\tothers\tinjected\texported\texport_dropped\tsink_cpu_s\n' >"$RESULTS"

# Sum of the samples of metric NAME whose line contains FILTER (may be empty).
metric_sum() {
	awk -v n="$2" -v f="$3" '
		index($0, n "{") == 1 || index($0, n " ") == 1 {
			if (f == "" || index($0, f)) s += $NF
		}
		END { printf "%.0f\n", s + 0 }' "$1"
}

scrape() { # scrape PORT FILE
	curl -s -f --max-time 5 -o "$2" "http://127.0.0.1:$1/metrics" ||
		die "cannot scrape agent /metrics on port $1"
}

cpu_ticks() { # utime + stime of PID, in clock ticks
	sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# CPU time of this shell's reaped children (cutime + cstime), in clock ticks.
# Only wrk is reaped while it runs, so the delta across run_wrk is wrk's CPU.
child_ticks() {
	sed 's/.*) //' "/proc/$$/stat" | awk '{ print $14 + $15 }'
}

# "busy total" clock ticks summed over all CPUs (busy includes irq, softirq
# and steal: time the machine was not available to idle).
sys_ticks() {
	awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat
}

ticks_to_s() { awk -v a="$1" -v b="$2" -v t="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / t }'; }

# Optionally wait (up to BENCH_QUIET_WAIT s) until no other tracer is running
# and the machine is nearly idle (< 10% of all CPUs busy over half a second;
# nginx and an attached tracer are idle at this point).
wait_quiet() {
	local i a b busy
	((QUIET_WAIT > 0)) || return 0
	for ((i = 0; i < QUIET_WAIT * 2; i++)); do
		read -r -a a < <(sys_ticks)
		sleep 0.5
		read -r -a b < <(sys_ticks)
		busy=$(awk -v b="$((b[0] - a[0]))" -v t="$((b[1] - a[1]))" 'BEGIN { print (t > 0 && 100 * b / t >= 10) ? 1 : 0 }')
		[ -z "$(other_tracers | tr -d ' ')" ] && [ "$busy" = 0 ] && return 0
	done
	note "machine not quiet after ${QUIET_WAIT}s; measuring anyway"
}

now() { date +%s.%N; }

# run_wrk SECONDS OUTFILE: wrk in the background so signals interrupt the wait.
run_wrk() {
	local rc=0
	"${WRK_PIN[@]}" wrk -t"$THREADS" -c"$CONNS" -d"$1"s --latency "$URL" >"$2" 2>&1 &
	WRK_PID=$!
	wait "$WRK_PID" || rc=$?
	WRK_PID=""
	if ((rc != 0)); then
		cat "$2" >&2
		die "wrk failed (exit $rc)"
	fi
}

# parse_wrk FILE → "rps p99_ms requests errors"
parse_wrk() {
	awk '
		/^Requests\/sec:/ { rps = $2 }
		/ requests in / { req = $1 }
		/^[ \t]+99%/ {
			v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
			p99 = (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : (u == "m") ? v * 60000 : v
		}
		/Socket errors:/ {
			for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) { x = $i; sub(/,/, "", x); err += x }
		}
		/Non-2xx or 3xx responses:/ { err += $NF }
		END {
			if (rps == "" || req == "") exit 1
			printf "%s %.3f %s %d\n", rps, p99, req, err
		}' "$1"
}

wait_floor_attached() { # PID LOG
	local i
	for ((i = 0; i < ATTACH_TIMEOUT * 10; i++)); do
		grep -q 'sonde-floor: attached' "$2" 2>/dev/null && return 0
		if proc_exited "$1"; then
			cat "$2" >&2
			wait "$1" 2>/dev/null || true
			TRACER_PID=""
			die "sonde-floor exited before attaching"
		fi
		sleep 0.1
	done
	cat "$2" >&2
	die "sonde-floor not attached within ${ATTACH_TIMEOUT}s"
}

wait_agent_healthy() { # PID PORT LOG
	local i code=""
	for ((i = 0; i < ATTACH_TIMEOUT * 10; i++)); do
		if proc_exited "$1"; then
			tail -n 20 "$3" >&2
			wait "$1" 2>/dev/null || true
			TRACER_PID=""
			die "sonde exited before becoming healthy"
		fi
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$2/healthz" || true)
		[ "$code" = 200 ] && return 0
		sleep 0.1
	done
	tail -n 20 "$3" >&2
	die "sonde /healthz not 200 within ${ATTACH_TIMEOUT}s (last status '${code:-none}')"
}

run_one() { # run_one ROUND CONFIG
	local round=$1 cfg=$2 tag="r$1-$2"
	local out="$WORK/wrk-$tag.txt" log="$WORK/$tag.log"
	local aport="" t0 t1 c0 c1 ev0 ev1 dr0 dr1 sp0 sp1 sk0 sk1 rss_kb
	local cpu="-" rss="-" events="-" drops="-" spans="-" skind="-" hits="-"
	local others rps p99 req err wall n0 n1 w0 w1 s0 s1 ncpu wcpu other tcpu_ticks=0
	local inj="-" exported="-" xdrop="-" sink_cpu="-" k0=0 k1=0 sink_ticks=0
	# base / bexport: the BENCH_BASE build run exactly as agent / export
	local bin=$SONDE kind=$cfg

	case $cfg in
	base) bin=$BASE kind=agent ;;
	bexport) bin=$BASE kind=export ;;
	esac
	case $kind in
	floor)
		"$FLOOR" >"$WORK/$tag.out" 2>"$log" &
		TRACER_PID=$!
		wait_floor_attached "$TRACER_PID" "$log"
		;;
	agent)
		aport=$(free_port "$PORT")
		"$bin" --listen "127.0.0.1:$aport" >"$WORK/$tag.out" 2>"$log" &
		TRACER_PID=$!
		wait_agent_healthy "$TRACER_PID" "$aport" "$log"
		;;
	export)
		aport=$(free_port "$PORT" "$SINK_PORT")
		OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$SINK_PORT" OTEL_METRIC_EXPORT_INTERVAL=5000 \
			"$bin" --listen "127.0.0.1:$aport" --inject-port "$PORT" >"$WORK/$tag.out" 2>"$log" &
		TRACER_PID=$!
		wait_agent_healthy "$TRACER_PID" "$aport" "$log"
		;;
	esac
	wait_quiet
	others=$(other_tracers)
	[ "$kind" = agent ] || [ "$kind" = export ] && scrape "$aport" "$WORK/$tag.m0"
	[ "$kind" = export ] && k0=$(cpu_ticks "$SINK_PID")

	[ "$cfg" = none ] || c0=$(cpu_ticks "$TRACER_PID")
	n0=$(cpu_ticks "$NGINX_WORKER")
	w0=$(child_ticks)
	read -r -a s0 < <(sys_ticks)
	t0=$(now)
	run_wrk "$RUN_SECONDS" "$out"
	t1=$(now)
	read -r -a s1 < <(sys_ticks)
	w1=$(child_ticks)
	proc_exited "$NGINX_WORKER" && die "the nginx worker exited during the run (see $WORK/error.log)"
	n1=$(cpu_ticks "$NGINX_WORKER")
	if [ "$cfg" != none ]; then
		proc_exited "$TRACER_PID" && { tail -n 20 "$log" >&2; die "$cfg tracer died during the run"; }
		c1=$(cpu_ticks "$TRACER_PID")
		tcpu_ticks=$((c1 - c0))
	fi
	if [ "$kind" = export ]; then
		k1=$(cpu_ticks "$SINK_PID")
		sink_ticks=$((k1 - k0))
		sink_cpu=$(ticks_to_s "$k0" "$k1")
	fi
	ncpu=$(ticks_to_s "$n0" "$n1")
	wcpu=$(ticks_to_s "$w0" "$w1")
	# Share of the machine's CPU capacity used by anything but nginx, wrk and
	# the tracer under test: other tenants, concurrent builds/tests, steal.
	other=$(awk -v b="$((s1[0] - s0[0]))" -v t="$((s1[1] - s0[1]))" \
		-v mine="$((n1 - n0 + w1 - w0 + tcpu_ticks + sink_ticks))" \
		'BEGIN { x = t > 0 ? 100 * (b - mine) / t : 0; printf "%.1f", x < 0 ? 0 : x }')
	others+=$(other_tracers)
	others=$(echo "$others" | tr ' ' '\n' | sort -un | tr '\n' ' ')
	read -r rps p99 req err < <(parse_wrk "$out") || { cat "$out" >&2; die "cannot parse wrk output"; }
	wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')

	case $kind in
	floor)
		stop_pid "$TRACER_PID" sonde-floor || die "sonde-floor had to be killed"
		TRACER_PID=""
		((STOP_RC == 0)) || { cat "$log" >&2; die "sonde-floor exited with status $STOP_RC"; }
		hits=$(awk '$1 == "floor_hits" { print $2 }' "$WORK/$tag.out")
		[ -n "$hits" ] || die "sonde-floor printed no floor_hits"
		;;
	agent | export)
		scrape "$aport" "$WORK/$tag.m1"
		sleep "$SETTLE"
		scrape "$aport" "$WORK/$tag.m2"
		rss_kb=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$TRACER_PID/status")
		stop_pid "$TRACER_PID" sonde || die "sonde had to be killed"
		TRACER_PID=""
		((STOP_RC == 0)) || { tail -n 20 "$log" >&2; die "sonde exited with status $STOP_RC"; }
		grep -q '"sonde stopped"' "$log" || note "warning: sonde did not log 'sonde stopped'"

		ev0=$(metric_sum "$WORK/$tag.m0" sonde_ringbuf_events_total 'ring="events"')
		ev1=$(metric_sum "$WORK/$tag.m1" sonde_ringbuf_events_total 'ring="events"')
		dr0=$(metric_sum "$WORK/$tag.m0" sonde_ringbuf_drops_total 'ring="events"')
		dr1=$(metric_sum "$WORK/$tag.m1" sonde_ringbuf_drops_total 'ring="events"')
		sp0=$(metric_sum "$WORK/$tag.m0" http_server_request_duration_seconds_count 'service_name="nginx"')
		sp1=$(metric_sum "$WORK/$tag.m2" http_server_request_duration_seconds_count 'service_name="nginx"')
		sk0=$(metric_sum "$WORK/$tag.m0" sonde_spans_total 'kind="server"')
		sk1=$(metric_sum "$WORK/$tag.m2" sonde_spans_total 'kind="server"')
		cpu=$(ticks_to_s "$c0" "$c1")
		rss=$(awk -v k="$rss_kb" 'BEGIN { printf "%.1f", k / 1024 }')
		events=$((ev1 - ev0))
		drops=$((dr1 - dr0))
		spans=$((sp1 - sp0))
		skind=$((sk1 - sk0))
		inj=$(($(metric_sum "$WORK/$tag.m2" sonde_injected_total '') - $(metric_sum "$WORK/$tag.m0" sonde_injected_total '')))
		if [ "$kind" = export ]; then
			exported=$(($(metric_sum "$WORK/$tag.m2" sonde_export_spans_total '') -
				$(metric_sum "$WORK/$tag.m0" sonde_export_spans_total '')))
			xdrop=$(($(metric_sum "$WORK/$tag.m2" sonde_export_dropped_total 'signal="traces"') -
				$(metric_sum "$WORK/$tag.m0" sonde_export_dropped_total 'signal="traces"')))
		fi
		;;
	esac

	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
		"$round" "$cfg" "$rps" "$p99" "$req" "$err" "$wall" "$cpu" "$rss" "$events" "$drops" \
		"$spans" "$skind" "$hits" "$ncpu" "$wcpu" "$other" "${others:- }" \
		"$inj" "$exported" "$xdrop" "$sink_cpu" >>"$RESULTS"
	note "$(printf 'round %d/%d %-5s %10s req/s' "$round" "$ROUNDS" "$cfg" "$rps")"
}

# ---- run ----
KERNEL=$(uname -r)
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
NGINX_VER=$(nginx -v 2>&1 | sed 's/.*: //')
WRK_VER=$(wrk -v 2>&1 | awk 'NR == 1 { print $1, $2 }' || true)
SONDE_VER=$("$SONDE" --version 2>&1 | head -n 1 || true)

echo "sonde benchmark: nginx static page, wrk keep-alive"
echo "  host        kernel $KERNEL, $NCPU CPUs${CPU_MODEL:+ ($CPU_MODEL)}, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  software    $SONDE_VER; $NGINX_VER; $WRK_VER"
echo "  nginx       worker_processes 1, 127.0.0.1:$PORT, keepalive_requests 1000, sendfile $SENDFILE, access_log $ACCESS_DESC, page $PAGE_BYTES bytes"
echo "  wrk         -t$THREADS -c$CONNS -d${RUN_SECONDS}s --latency $URL (warm-up ${WARMUP}s, not measured)"
echo "  pinning     $PIN_DESC"
echo "  rounds      $ROUNDS; order per round: $ORDER ($(if [ "$ORDER" = fixed ]; then echo "${CONFIGS[*]}" | sed 's/ /, /g'; else echo "rotated by one each round"; fi))"
[ -z "$BASE" ] || echo "  base        $BASE run as agent (base) and as export (bexport): before/after in the same rounds"
echo "  tracers     started before and stopped after each run; wrk starts once attached (floor: stderr line, agent: /healthz 200)"
echo "  agent       $SONDE --listen 127.0.0.1:<free port>, all processes traced; CPU = utime+stime delta over the wrk run (CLK_TCK $CLK_TCK)"
echo "  export      as agent, plus OTEL_EXPORTER_OTLP_ENDPOINT=<sink on 127.0.0.1:$SINK_PORT> OTEL_METRIC_EXPORT_INTERVAL=5000"
echo "              (other OTLP settings default: batches of 512, queue 2048, no gzip) and --inject-port $PORT:"
echo "              wrk's requests get a traceparent inserted by sk_msg; sink CPU counted apart"
echo "  quiet wait  $( ((QUIET_WAIT > 0)) && echo "up to ${QUIET_WAIT}s before each run" || echo "off (BENCH_QUIET_WAIT=0)")"
o=$(other_tracers)
[ -z "${o// /}" ] || echo "  WARNING     other sonde/sonde-floor processes are running (pids$o); results are skewed"
echo

if ((ONLY_SCRAPE || ONLY_IDLE)); then
	echo "  (BENCH_ONLY_$( ((ONLY_IDLE)) && echo IDLE || echo SCRAPE)=1: the request-load and OTLP sections are skipped)"
	stop_nginx
else
if ((WARMUP > 0)); then
	run_wrk "$WARMUP" "$WORK/wrk-warmup.txt"
fi
for ((r = 1; r <= ROUNDS; r++)); do
	order=("${CONFIGS[@]}")
	if [ "$ORDER" = rotate ]; then
		s=$(((r - 1) % ${#CONFIGS[@]}))
		order=("${CONFIGS[@]:s}" "${CONFIGS[@]:0:s}")
	fi
	for cfg in "${order[@]}"; do
		run_one "$r" "$cfg"
	done
done
stop_nginx
((STOP_RC == 0)) || die "nginx exited with status $STOP_RC (see $WORK/error.log)"

ELAPSED=$SECONDS # bash: seconds since the script started

# ---- report ----
python3 - "$RESULTS" "$ELAPSED" "${BASE:-none}" "$SONDE" <<'PY'
import csv, statistics, sys

rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
elapsed = sys.argv[2]
LOSS_GOAL_PCT = 5.0   # throughput loss with full HTTP tracing
RSS_GOAL_MIB = 32.0   # agent resident memory
NOISY_PCT = 10.0      # flag runs where other work used more of the machine than this

for r in rows:
    r["req"] = int(r["requests"])
    r["wall"] = float(r["wall_s"])
    r["rps_f"] = float(r["rps"])
    r["other"] = float(r["other_cpu_pct"])
    r["tracers"] = r["others"].split()

def per_req_us(r, key):
    return float(r[key]) / r["req"] * 1e6 if r["req"] else float("nan")

print("Per-run results")
cols = [("round", "{:>5}"), ("config", "{:<6}"), ("req/s", "{:>8}"), ("p99 ms", "{:>6}"),
        ("requests", "{:>8}"), ("errors", "{:>6}"), ("nginx us/req", "{:>12}"),
        ("wrk us/req", "{:>10}"), ("agent CPU s", "{:>11}"), ("peak RSS MiB", "{:>12}"),
        ("events/s", "{:>8}"), ("drops", "{:>5}"), ("nginx spans", "{:>11}"),
        ("spans/req", "{:>9}"), ("floor hits/req", "{:>14}"), ("inj/req", "{:>7}"), ("exported/req", "{:>12}"),
        ("other CPU %", "{:>11}"), ("", "{}")]
fmt = " ".join(c[1] for c in cols)
print(fmt.format(*(c[0] for c in cols)))
for r in rows:
    agent = r["config"] in ("agent", "export", "base", "bexport")
    flags = ("*" if r["tracers"] else "") + ("!" if r["other"] > NOISY_PCT else "")
    print(fmt.format(
        r["round"], r["config"], "%.0f" % r["rps_f"], "%.2f" % float(r["p99_ms"]), r["req"], r["errors"],
        "%.1f" % per_req_us(r, "nginx_cpu_s"), "%.1f" % per_req_us(r, "wrk_cpu_s"),
        r["cpu_s"] if agent else "-",
        r["rss_mib"] if agent else "-",
        "%.0f" % (int(r["events"]) / r["wall"]) if agent else "-",
        r["drops"] if agent else "-",
        r["spans"] if agent else "-",
        "%.3f" % (int(r["spans"]) / r["req"]) if agent and r["req"] else "-",
        "%.1f" % (int(r["floor_hits"]) / r["req"]) if r["config"] == "floor" and r["req"] else "-",
        "%.2f" % (int(r["injected"]) / r["req"]) if agent and r["req"] else "-",
        "%.2f" % (int(r["exported"]) / r["req"]) if r["config"] in ("export", "bexport") and r["req"] else "-",
        "%.1f" % r["other"], flags))
print("  nginx/wrk us/req: CPU time (user+sys) of the nginx worker / of wrk during the run, per request;")
print("    it includes the in-kernel cost of the BPF programs that run on their syscalls.")
print("  agent CPU s: agent utime+stime delta over the wrk run. events/s, drops: delta of the agent's")
print("    ring counters over the run (drops: count, not rate). nginx spans: delta of")
print("    http_server_request_duration_seconds_count{service_name=\"nginx\"}, last scrape 1 s after wrk.")
print("  floor hits/req: tracepoint hits counted by sonde-floor (all processes) per wrk request.")
print("  inj/req: sonde_injected_total delta per wrk request (traceparent headers inserted).")
print("  exported/req: sonde_export_spans_total delta per wrk request (nginx server + wrk client")
print("    spans, so about 2 when every span is sent; queue_full drops are counted apart).")
print("  other CPU %: share of all CPUs busy with anything but nginx, wrk and the tracer (other")
print("    tenants, concurrent builds or tests, irq/steal). '!' marks runs above %.0f%%." % NOISY_PCT)
tracers = sorted({p for r in rows for p in r["tracers"]}, key=int)
if tracers:
    print("  * another sonde/sonde-floor process (not this script's; pids %s) was running at the start" % " ".join(tracers))
    print("    or end of the run, e.g. concurrent tests; it traces nginx and wrk too, so the run is skewed.")
if any(r["tracers"] or r["other"] > NOISY_PCT for r in rows):
    print("  Flagged runs were not measured on a quiet machine; BENCH_QUIET_WAIT=N waits up to N s for")
    print("  a quiet machine before each run.")
print()

def vals(cfg, fn):
    return [fn(r) for r in rows if r["config"] == cfg]

def med(v):
    return statistics.median(v) if v else float("nan")

def spread(cfg):
    v = vals(cfg, lambda r: r["rps_f"])
    if len(v) < 2:
        return ""
    m = statistics.median(v)
    return "   (min %.0f, max %.0f; max-min = %.1f%% of median)" % (min(v), max(v), 100 * (max(v) - min(v)) / m)

none = med(vals("none", lambda r: r["rps_f"]))
floor = med(vals("floor", lambda r: r["rps_f"]))
agent = med(vals("agent", lambda r: r["rps_f"]))

# Paired per-round ratios: each round's agent (floor) run against the same round's none run.
by_round = {}
for r in rows:
    by_round.setdefault(r["round"], {})[r["config"]] = r["rps_f"]
paired_agent = [d["agent"] / d["none"] for d in by_round.values() if "agent" in d and d.get("none")]
paired_floor = [d["floor"] / d["none"] for d in by_round.values() if "floor" in d and d.get("none")]

ag = [r for r in rows if r["config"] == "agent"]
cpu_per_1k = med([float(r["cpu_s"]) / r["req"] * 1000 for r in ag if r["req"]])
cpu_pct = med([100 * float(r["cpu_s"]) / r["wall"] for r in ag])
rss_max = max(float(r["rss_mib"]) for r in ag)
ev_s = med([int(r["events"]) / r["wall"] for r in ag])
drops = sum(int(r["drops"]) for r in ag)
events = sum(int(r["events"]) for r in ag)
spans = sum(int(r["spans"]) for r in ag)
skind = sum(int(r["spans_kind_server"]) for r in ag)
reqs = sum(r["req"] for r in ag)
errors = sum(int(r["errors"]) for r in rows)
loss = 100 * (1 - agent / none)
floor_loss = 100 * (1 - floor / none)
n = len(by_round)

# The primary figure: CPU per request of everything involved (nginx, wrk
# and the tracer's own process; the BPF programs run inside nginx's and
# wrk's system time), user + sys. It reads far more steadily on a shared
# box than throughput, which moves with whatever else the host does.
def total_us(r):
    t = float(r["nginx_cpu_s"]) + float(r["wrk_cpu_s"])
    if r["config"] in ("agent", "export", "base", "bexport", "floor") and r["cpu_s"] not in ("", "-"):
        t += float(r["cpu_s"])
    return t / r["req"] * 1e6 if r["req"] else float("nan")

cfgs = [c for c in ("none", "floor", "agent", "export", "base", "bexport") if vals(c, lambda r: 1)]
print("Primary: CPU per request, nginx + wrk + tracer process (user + sys), over %d interleaved round%s"
      % (n, "" if n == 1 else "s"))
for c in cfgs:
    v = vals(c, total_us)
    noisy = sum(1 for r in rows if r["config"] == c and (r["tracers"] or r["other"] > NOISY_PCT))
    line = "  %-8s %7.1f us  (min %.1f, max %.1f)" % (c, med(v), min(v), max(v))
    if c != "none":
        d = [total_us(rr[c]) - total_us(rr["none"]) for rr in
             ({x["config"]: x for x in rows if x["round"] == k} for k in by_round) if c in rr and "none" in rr]
        if d:
            line += "  %+.1f us over none (median of per-round differences; %+.1f..%+.1f)" % (
                med(d), min(d), max(d))
    if noisy:
        line += "  [%d noisy run%s]" % (noisy, "" if noisy == 1 else "s")
    print(line)
print()

print("Summary (medians over %d round%s)" % (n, "" if n == 1 else "s"))
print("  req/s none               %9.0f%s" % (none, spread("none")))
print("  req/s floor              %9.0f%s" % (floor, spread("floor")))
print("  req/s agent              %9.0f%s" % (agent, spread("agent")))
print("  floor / none             %9.1f%%" % (100 * floor / none)
      + ("   (median of per-round ratios %.1f%%)" % (100 * med(paired_floor)) if n > 1 else ""))
print("  agent / none             %9.1f%%" % (100 * agent / none)
      + ("   (median of per-round ratios %.1f%%)" % (100 * med(paired_agent)) if n > 1 else ""))
xp = [r for r in rows if r["config"] == "export"]
if xp:
    export = med(vals("export", lambda r: r["rps_f"]))
    paired_export = [d["export"] / d["none"] for d in by_round.values() if "export" in d and d.get("none")]
    print("  req/s export             %9.0f%s" % (export, spread("export")))
    print("  export+inject / none     %9.1f%%" % (100 * export / none)
          + ("   (median of per-round ratios %.1f%%)" % (100 * med(paired_export)) if n > 1 else "")
          + "   <- OTLP export and traceparent injection on")
print("  throughput loss          %9.1f%%   (agent vs none; floor alone: %.1f%%)" % (loss, floor_loss))
print("  nginx CPU us/req         %9.1f    none; %.1f floor; %.1f agent" % (
    med(vals("none", lambda r: per_req_us(r, "nginx_cpu_s"))),
    med(vals("floor", lambda r: per_req_us(r, "nginx_cpu_s"))),
    med(vals("agent", lambda r: per_req_us(r, "nginx_cpu_s")))))
print("  wrk CPU us/req           %9.1f    none; %.1f floor; %.1f agent" % (
    med(vals("none", lambda r: per_req_us(r, "wrk_cpu_s"))),
    med(vals("floor", lambda r: per_req_us(r, "wrk_cpu_s"))),
    med(vals("agent", lambda r: per_req_us(r, "wrk_cpu_s")))))
print("  agent CPU per 1k req     %9.4f s  (%.1f%% of one CPU during the run)" % (cpu_per_1k, cpu_pct))
print("  agent peak RSS           %9.1f MiB (VmHWM, max over runs)" % rss_max)
print("  ring events/s            %9.0f" % ev_s)
print("  ring drops total         %9d    (of %d events in the agent runs)" % (drops, events))
print("  nginx server spans       %9d    vs %d wrk requests (%.1f%%); sonde_spans_total{kind=\"server\"} delta %d"
      % (spans, reqs, 100 * spans / reqs if reqs else 0, skind))
if xp:
    xreq = sum(r["req"] for r in xp)
    print("  export: agent CPU/1k req %9.4f s  (sink: %.4f s per 1k req, not in the agent's figure)" % (
        med([float(r["cpu_s"]) / r["req"] * 1000 for r in xp if r["req"]]),
        med([float(r["sink_cpu_s"]) / r["req"] * 1000 for r in xp if r["req"]])))
    print("  export: peak RSS         %9.1f MiB" % max(float(r["rss_mib"]) for r in xp))
    print("  export: injected         %9d    of %d wrk requests (%.1f%%)" % (
        sum(int(r["injected"]) for r in xp), xreq, 100 * sum(int(r["injected"]) for r in xp) / xreq if xreq else 0))
    print("  export: spans exported   %9d    (%.2f per request); dropped %d (queue_full etc.)" % (
        sum(int(r["exported"]) for r in xp), sum(int(r["exported"]) for r in xp) / xreq if xreq else 0,
        sum(int(r["export_dropped"]) for r in xp)))
print("  other CPU (noise)        %9.1f%%   median over all runs (max %.1f%%)"
      % (med([r["other"] for r in rows]), max(r["other"] for r in rows)))
if errors:
    print("  wrk errors               %9d    (socket errors + non-2xx/3xx responses, all runs)" % errors)
if any(r["config"] == "base" for r in rows):
    # BENCH_BASE: the same figures for the other build, paired per round
    def pair(cfg):
        return med([d[cfg] / d["none"] for d in by_round.values() if cfg in d and d.get("none")])
    def cpu1k(cfg):
        return med([float(r["cpu_s"]) / r["req"] * 1000 for r in rows if r["config"] == cfg and r["req"]])
    def evreq(cfg):
        return med([int(r["events"]) / r["req"] for r in rows if r["config"] == cfg and r["req"]])
    print()
    print("Before / after (BENCH_BASE=%s vs %s; medians of per-round ratios to none)" % (
        sys.argv[3], sys.argv[4]))
    print("  %-26s %10s %10s" % ("", "base", "this"))
    print("  %-26s %9.1f%% %9.1f%%" % ("agent / none", 100 * pair("base"), 100 * pair("agent")))
    if any(r["config"] == "bexport" for r in rows):
        print("  %-26s %9.1f%% %9.1f%%" % ("export+inject / none", 100 * pair("bexport"), 100 * pair("export")))
    print("  %-26s %10.2f %10.2f" % ("agent CPU ms per 1k req", 1000 * cpu1k("base"), 1000 * cpu1k("agent")))
    if any(r["config"] == "bexport" for r in rows):
        print("  %-26s %10.2f %10.2f" % ("export CPU ms per 1k req", 1000 * cpu1k("bexport"), 1000 * cpu1k("export")))
    print("  %-26s %10.2f %10.2f" % ("ring events per request", evreq("base"), evreq("agent")))
    print("  %-26s %10.1f %10.1f" % ("nginx CPU us/req",
          med(vals("base", lambda r: per_req_us(r, "nginx_cpu_s"))),
          med(vals("agent", lambda r: per_req_us(r, "nginx_cpu_s")))))
    print("  %-26s %10.1f %10.1f" % ("wrk CPU us/req",
          med(vals("base", lambda r: per_req_us(r, "wrk_cpu_s"))),
          med(vals("agent", lambda r: per_req_us(r, "wrk_cpu_s")))))
print()
print("Goals (measured, medians)")
print("  throughput loss <= %.0f%% with full HTTP tracing   %6.1f%%      %s"
      % (LOSS_GOAL_PCT, loss, "PASS" if loss <= LOSS_GOAL_PCT else "MISS"))
print("  agent RSS <= %.0f MiB                             %6.1f MiB   %s"
      % (RSS_GOAL_MIB, rss_max, "PASS" if rss_max <= RSS_GOAL_MIB else "MISS"))
print()
print("Total time %s s" % elapsed)
PY

# ---- unrelated-syscall tax: dd, which touches no socket ----
# Enabling any syscalls:* tracepoint puts every syscall of every task on the
# slow path; the socket capture tier attaches none. dd if=/dev/zero
# of=/dev/null bs=1 makes 2 syscalls per byte. Configurations, interleaved in
# each round: none; agent (default: socket tier where the kernel has it);
# agent-syscall (--attach-mode tracepoint: the syscall tier); floor
# (sonde-floor, count-only programs on the syscall tracepoints). Figure: dd's
# CPU time (user+sys) per syscall, as a ratio to none in the same round;
# goal: agent within 3 % of none. BENCH_DD_ROUNDS=5 (0 = skip),
# BENCH_DD_COUNT=1000000. nginx is stopped; dd is pinned to the last CPU
# when BENCH_PIN=1.
DD_ROUNDS=${BENCH_DD_ROUNDS:-5}
DD_COUNT=${BENCH_DD_COUNT:-1000000}
if ((DD_ROUNDS > 0)); then
	echo
	: >"$WORK/dd.tsv"
	dd_pin=()
	((PIN == 1 && NCPU >= 2)) && dd_pin=(taskset -c $((NCPU - 1)))
	dd_run() { # CONFIG ROUND: one dd run under CONFIG, appended to dd.tsv
		local cfg=$1 r=$2 aport t
		TRACER_PID=""
		case $cfg in
		agent | agent-syscall)
			aport=$(free_port)
			if [ "$cfg" = agent ]; then
				"$SONDE" --listen "127.0.0.1:$aport" >"$WORK/dd-$cfg.out" 2>"$WORK/dd-$cfg.log" &
			else
				"$SONDE" --listen "127.0.0.1:$aport" --attach-mode tracepoint \
					>"$WORK/dd-$cfg.out" 2>"$WORK/dd-$cfg.log" &
			fi
			TRACER_PID=$!
			wait_agent_healthy "$TRACER_PID" "$aport" "$WORK/dd-$cfg.log"
			;;
		floor)
			"$FLOOR" >"$WORK/dd-floor.out" 2>"$WORK/dd-floor.log" &
			TRACER_PID=$!
			wait_floor_attached "$TRACER_PID" "$WORK/dd-floor.log"
			;;
		esac
		wait_quiet
		# dd's own CPU time (children's user+sys), so time spent waiting
		# for a CPU on this shared box does not count; wall time kept too.
		t=$(python3 -c '
import resource, subprocess, sys, time
w0 = time.monotonic()
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
w = time.monotonic() - w0
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print("%.6f\t%.6f" % (r.ru_utime + r.ru_stime, w))' "${dd_pin[@]}" dd if=/dev/zero of=/dev/null bs=1 count="$DD_COUNT")
		printf '%s\t%s\t%s\t%s\n' "$r" "$cfg" "$t" "$(cut -d' ' -f1 /proc/loadavg)" >>"$WORK/dd.tsv"
		if [ -n "$TRACER_PID" ]; then
			stop_pid "$TRACER_PID" "$cfg" || true
			TRACER_PID=""
		fi
	}
	for ((r = 1; r <= DD_ROUNDS; r++)); do
		for cfg in none agent agent-syscall floor; do
			dd_run "$cfg" "$r"
		done
	done
	python3 - "$WORK/dd.tsv" "$DD_COUNT" "$SONDE" <<'PY'
import statistics, sys

path, count, sonde = sys.argv[1], int(sys.argv[2]), sys.argv[3]
runs = {}
for line in open(path):
    r, cfg, cpu, wall, load = line.split("\t")
    runs.setdefault(cfg, {})[int(r)] = (float(cpu) * 1e9 / (2 * count), float(wall) * 1e9 / (2 * count), float(load))
none = runs["none"]
print("Unrelated-syscall tax: dd if=/dev/zero of=/dev/null bs=1 count=%d (%d syscalls), %d interleaved rounds"
      % (count, 2 * count, len(none)))
print("  figure: dd's CPU (user+sys) per syscall; ratio = config / none of the same round")
print("  %-14s %16s %22s %22s %s" % ("config", "ns/syscall p50", "ratio p50 [min-max]", "wall ns/syscall p50", "noise"))
noisy_any = False
for cfg in ("none", "agent", "agent-syscall", "floor"):
    if cfg not in runs:
        continue
    rs = runs[cfg]
    ns = sorted(v[0] for v in rs.values())
    ratios = sorted(rs[r][0] / none[r][0] for r in rs if r in none and none[r][0] > 0)
    spread = (ns[-1] - ns[0]) / statistics.median(ns) if len(ns) > 1 else 0.0
    load = max(v[2] for v in rs.values())
    noise = []
    if spread > 0.10:
        noise.append("spread %.0f%%" % (spread * 100))
    if load > 1.0:
        noise.append("load %.1f" % load)
    noisy_any = noisy_any or bool(noise)
    print("  %-14s %16.1f %10.3f [%.3f-%.3f] %22.1f %s" % (
        cfg, statistics.median(ns), statistics.median(ratios), ratios[0], ratios[-1],
        statistics.median(v[1] for v in rs.values()), "NOISY (" + ", ".join(noise) + ")" if noise else "ok"))
agent = statistics.median(runs["agent"][r][0] / none[r][0] for r in runs["agent"] if r in none)
verdict = "met" if agent <= 1.03 else "MISSED"
print("  goal: agent (%s, default tier) within 3 %% of none: ratio %.3f -> %s%s" % (
    sonde, agent, verdict, " (noisy: read with care)" if noisy_any else ""))
print("  agent-syscall and floor attach syscall tracepoints: the tax the socket tier removes.")
print("  The machine may be shared (load shown per config): a flagged row is not a measurement to trust alone.")
PY
fi

# ---- BPF ns per request per program (kernel.bpf_stats_enabled) ----
# tests/bench/bpf_cost.py: its own nginx + wrk, the agent in its default
# tier, bpf_stats on for the run (restored after). BENCH_BPF_SECONDS=5;
# 0 = skip.
if ((${BENCH_BPF_SECONDS:-5} > 0)); then
	echo
	echo "BPF cost per request per program (tests/bench/bpf_cost.py, bpf_stats adds ~40 ns per call)"
	# with BENCH_BASE, both builds interleaved in each round
	python3 tests/bench/bpf_cost.py --seconds "${BENCH_BPF_SECONDS:-5}" --rounds "${BENCH_BPF_ROUNDS:-3}" \
		${BASE:+base="$BASE"} agent="$SONDE" ||
		note "bpf_cost.py failed; BPF per-program figures missing"
fi

# ---- the same, one thread playing both ends (build/sockloop) ----
# Four socket calls per request, no scheduling between two processes: the
# per-call figures read steadier than under nginx + wrk, so small changes
# to the programs show. BENCH_LOOP_REQUESTS=300000 per round; 0 = skip.
if ((${BENCH_LOOP_REQUESTS:-300000} > 0)); then
	echo
	echo "BPF cost per request, one thread as client and server (bpf_cost.py --loop, 361/176-byte heads)"
	python3 tests/bench/bpf_cost.py --loop "${BENCH_LOOP_REQUESTS:-300000}" --rounds "${BENCH_BPF_ROUNDS:-3}" \
		${BASE:+base="$BASE"} agent="$SONDE" ||
		note "bpf_cost.py --loop failed; loop figures missing"
fi

# ---- an idle agent's CPU (no socket traffic of its own to trace) ----
# Each build started alone, left 3 s, then its CPU (schedstat) over
# BENCH_IDLE_CPU_SECONDS=10; BENCH_IDLE_CPU_ROUNDS=3; 0 = skip. Traffic of
# other processes on the host wakes it too: a busy host reads higher.
if ((${BENCH_IDLE_CPU_SECONDS:-10} > 0)); then
	echo
	echo "Idle agent CPU (µs of CPU per second, ${BENCH_IDLE_CPU_SECONDS:-10} s after 3 s of start-up; host load $(cut -d' ' -f1 /proc/loadavg))"
	for ((r = 1; r <= ${BENCH_IDLE_CPU_ROUNDS:-3}; r++)); do
		line="  round $r:"
		for pair in ${BASE:+base=$BASE} agent=$SONDE; do
			label=${pair%%=*} bin=${pair#*=}
			lp=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
			"$bin" --listen "127.0.0.1:$lp" >/dev/null 2>&1 &
			ip=$!
			for _ in $(seq 100); do curl -sf "http://127.0.0.1:$lp/healthz" >/dev/null && break; sleep 0.1; done
			sleep 3
			# every thread of it (/proc/PID/schedstat is the first one's)
			c0=$(cat /proc/$ip/task/*/schedstat 2>/dev/null | awk '{s += $1} END {print s + 0}')
			sleep "${BENCH_IDLE_CPU_SECONDS:-10}"
			c1=$(cat /proc/$ip/task/*/schedstat 2>/dev/null | awk '{s += $1} END {print s + 0}')
			kill "$ip" 2>/dev/null
			wait "$ip" 2>/dev/null
			line+=" $label $(( (c1 - c0) / 1000 / ${BENCH_IDLE_CPU_SECONDS:-10} ))"
		done
		echo "$line"
	done
fi

# ---- HTTP/2: h2load against nginx (http2 on a cleartext port) ----
# none vs agent, interleaved per round: h2load (1 thread, 4 connections, 10
# streams each) for BENCH_H2_SECONDS; nginx worker CPU and agent CPU per
# request from /proc, spans vs. requests from the agent's /metrics.
H2_SECONDS=${BENCH_H2_SECONDS:-$RUN_SECONDS}
H2_ROUNDS=${BENCH_H2_ROUNDS:-$ROUNDS}
if ((H2_SECONDS > 0)) && ! command -v h2load >/dev/null; then
	note "h2load (nghttp2-client) not installed; skipping the HTTP/2 section"
	H2_SECONDS=0
fi
if ((H2_SECONDS > 0)); then
	echo
	H2_PORT=$(free_port)
	sed -e "s|listen 127.0.0.1:$PORT;|listen 127.0.0.1:$H2_PORT http2;|" \
		-e "s|pid $WORK/nginx.pid;|pid $WORK/nginx-h2.pid;|" \
		-e "s|keepalive_requests 1000;|keepalive_requests 100000000;|" "$WORK/nginx.conf" >"$WORK/nginx-h2.conf"
	"${NGINX_PIN[@]}" nginx -e "$WORK/error.log" -c "$WORK/nginx-h2.conf" -p "$WORK/" \
		-g 'daemon off;' >"$WORK/nginx-h2.out" 2>&1 &
	NGINX_PID=$!
	H2_URL="http://127.0.0.1:$H2_PORT/index.html"
	for ((i = 0; ; i++)); do
		proc_exited "$NGINX_PID" && { cat "$WORK/nginx-h2.out" >&2; NGINX_PID=""; die "nginx (http2) exited during start-up"; }
		code=$(curl -s --http2-prior-knowledge -o /dev/null -w '%{http_code}' --max-time 1 "$H2_URL" || true)
		[ "$code" = 200 ] && break
		((i < 100)) || die "nginx (http2) not serving $H2_URL after 10 s"
		sleep 0.1
	done
	H2_WORKER=$(pgrep -P "$NGINX_PID" | head -n 1 || true)
	[ -n "$H2_WORKER" ] || die "cannot find the nginx (http2) worker process"
	H2_RESULTS="$WORK/h2.tsv"
	printf 'round\tconfig\trequests\tsucceeded\trps\tnginx_cpu_s\tagent_cpu_s\tspans\tother_cpu_pct\n' >"$H2_RESULTS"
	echo "HTTP/2: h2load -t1 -c4 -m10 -D${H2_SECONDS} $H2_URL, nginx http2 (cleartext, worker_processes 1)"
	echo "  $H2_ROUNDS rounds of none, agent (all processes traced); the machine is shared: see other CPU"
	for ((r = 1; r <= H2_ROUNDS; r++)); do
		for cfg in none agent; do
			wait_quiet
			apid="" aport=""
			if [ "$cfg" = agent ]; then
				aport=$(free_port "$PORT" "$H2_PORT")
				"$SONDE" --listen "127.0.0.1:$aport" >"$WORK/h2-agent.out" 2>"$WORK/h2-agent.log" &
				TRACER_PID=$!
				apid=$TRACER_PID
				wait_agent_healthy "$TRACER_PID" "$aport" "$WORK/h2-agent.log"
				scrape "$aport" "$WORK/h2-before.txt"
			fi
			n0=$(cpu_ticks "$H2_WORKER")
			a0=0
			[ -z "$apid" ] || a0=$(cpu_ticks "$apid")
			read -r -a s0 < <(sys_ticks)
			c0=$(child_ticks)
			"${WRK_PIN[@]}" h2load -t1 -c4 -m10 -D "$H2_SECONDS" "$H2_URL" >"$WORK/h2load-$r-$cfg.txt" 2>&1 ||
				die "h2load failed: $(tail -n 5 "$WORK/h2load-$r-$cfg.txt")"
			c1=$(child_ticks)
			read -r -a s1 < <(sys_ticks)
			n1=$(cpu_ticks "$H2_WORKER")
			spans=0 a1=0
			if [ -n "$apid" ]; then
				sleep "$SETTLE"
				a1=$(cpu_ticks "$apid")
				scrape "$aport" "$WORK/h2-after.txt"
				spans=$(($(metric_sum "$WORK/h2-after.txt" http_server_request_duration_seconds_count "server_port=\"$H2_PORT\"") -
					$(metric_sum "$WORK/h2-before.txt" http_server_request_duration_seconds_count "server_port=\"$H2_PORT\"")))
				stop_pid "$TRACER_PID" sonde || true
				TRACER_PID=""
			fi
			# "requests: T total, S started, D done, K succeeded, ...": the
			# requests still in flight when -D ends were started, and answered
			req=$(awk '/^requests:/ { print $4 }' "$WORK/h2load-$r-$cfg.txt")
			ok=$(awk '/^requests:/ { print $8 }' "$WORK/h2load-$r-$cfg.txt")
			rps=$(awk '/^finished in/ { print $4 }' "$WORK/h2load-$r-$cfg.txt")
			# CPU of everything but nginx, h2load and the agent, in % of all CPUs
			other=$(awk -v b="$((s1[0] - s0[0]))" -v t="$((s1[1] - s0[1]))" -v n="$((n1 - n0))" \
				-v a="$((a1 - a0))" -v h="$((c1 - c0))" \
				'BEGIN { o = b - n - a - h; if (o < 0) o = 0; printf "%.1f", (t > 0 ? 100 * o / t : 0) }')
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$cfg" "$req" "$ok" "$rps" \
				"$(ticks_to_s "$n0" "$n1")" "$(ticks_to_s "$a0" "$a1")" "$spans" "$other" >>"$H2_RESULTS"
		done
	done
	stop_nginx
	python3 - "$H2_RESULTS" <<'PY'
import csv, statistics, sys

rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
med = statistics.median
print("  %-6s %-6s %9s %10s %14s %14s %12s %8s" % ("round", "config", "req/s", "succeeded", "nginx us/req",
                                                  "agent us/req", "spans", "other%"))
for r in rows:
    n = int(r["succeeded"] or 0)
    print("  %-6s %-6s %9.0f %10d %14.2f %14s %12s %7s%%%s" % (
        r["round"], r["config"], float(r["rps"] or 0), n, 1e6 * float(r["nginx_cpu_s"]) / n if n else 0,
        "%.2f" % (1e6 * float(r["agent_cpu_s"]) / n) if r["config"] == "agent" and n else "-",
        r["spans"] if r["config"] == "agent" else "-", r["other_cpu_pct"],
        "  NOISY" if float(r["other_cpu_pct"]) >= 10 else ""))
def m(cfg, f):
    v = [f(r) for r in rows if r["config"] == cfg and int(r["succeeded"] or 0)]
    return med(v) if v else float("nan")
none_rps, agent_rps = m("none", lambda r: float(r["rps"])), m("agent", lambda r: float(r["rps"]))
nn = m("none", lambda r: 1e6 * float(r["nginx_cpu_s"]) / int(r["succeeded"]))
na = m("agent", lambda r: 1e6 * float(r["nginx_cpu_s"]) / int(r["succeeded"]))
aa = m("agent", lambda r: 1e6 * float(r["agent_cpu_s"]) / int(r["succeeded"]))
sp = [int(r["spans"]) / int(r["requests"]) for r in rows if r["config"] == "agent" and int(r["requests"] or 0)]
print("  medians: req/s none %.0f, agent %.0f (%.1f%%); nginx CPU us/req none %.2f, agent %.2f (+%.2f);"
      % (none_rps, agent_rps, 100 * agent_rps / none_rps, nn, na, na - nn))
print("           agent CPU us/req %.2f; nginx server spans per request started %.3f (every round: %s)"
      % (aa, med(sp) if sp else float("nan"), ", ".join("%.3f" % s for s in sp)))
PY
fi

# ---- OTLP export: span encoding cost (build/otlp-bench, no network) ----
# Spans per second on one core the agent's way: spans into queue records,
# then ExportTraceServiceRequest batches of OTEL_BSP_MAX_EXPORT_BATCH_SIZE
# (512) written by one reused encoder, with and without gzip (level 1).
# BENCH_OTLP_SECONDS=4 (split between the two); 0 = skip.
if ((${BENCH_OTLP_SECONDS:-4} > 0)); then
	echo
	[[ -x build/otlp-bench ]] || make -s build/otlp-bench
	build/otlp-bench "${BENCH_OTLP_SECONDS:-4}" 512
fi

# ---- HTTP/1 head parser alone (build/http1-bench, no agent) ----
# ns of thread CPU per message for typical request and response heads, one
# captured chunk each as the agent feeds them; the daemon parses each
# request twice when it traces both ends (server and client connection).
# BENCH_PARSER_SECONDS=2 (split between the cases); 0 = skip.
if ((${BENCH_PARSER_SECONDS:-2} > 0)); then
	echo
	[[ -x build/http1-bench ]] || make -s build/http1-bench
	build/http1-bench "${BENCH_PARSER_SECONDS:-2}"
fi

fi # ONLY_SCRAPE / ONLY_IDLE

# ---- RSS at N idle keep-alive connections (tests/bench/idle_rss.py) ----
# Its own nginx (worker_connections and descriptors raised to match) and the
# agent with its defaults; memory read from /proc/<agent>/status and smaps
# with 0 connections, then with N connections that each sent one request and
# stay open (both ends traced: 2N tracked). Goals: RSS <= 40 MB at 10,000,
# <= 3 KB of user-space memory per idle tracked connection.
if ((IDLE_CONNS > 0 && ONLY_SCRAPE == 0 && IDLE_ROUNDS > 0)); then
	echo
	idle_builds=()
	[ -z "$BASE" ] || idle_builds+=(--sonde "base=$BASE")
	idle_builds+=(--sonde "agent=$SONDE")
	python3 tests/bench/idle_rss.py "${idle_builds[@]}" --conns "$IDLE_CONNS" --rounds "$IDLE_ROUNDS" ||
		note "idle_rss.py failed; the idle-connection memory figures are missing"
fi
((ONLY_IDLE == 0)) || exit 0

# ---- scrape cost: sonde's /metrics (with node_* host metrics) vs node_exporter ----
# Both run side by side, each on its own loopback port, with nothing else
# driving HTTP (nginx is stopped): sonde still traces the scrapes themselves,
# as it would in production. node_exporter runs the collectors sonde covers
# (see tests/integration/test_node_exporter.py), both read the same textfile
# directory. SCRAPE_ROUNDS rounds, the order of the two alternating per
# round; CPU is the schedstat delta of each process (all threads) over its
# scrapes of a round. Three ways to scrape, each `per` times per round:
# "kept": tests/bench/scrape_client.py, one HTTP/1.1 connection kept open as
# Prometheus keeps it, Accept-Encoding identity (the goal's figure); "gzip":
# the same with Accept-Encoding gzip, as Prometheus asks; "curl": one curl
# process and connection per scrape (the figure earlier runs reported: it
# adds connection set-up and a new process for sonde to identify per
# scrape). Per collector: build/sonde-hostdump --repeat (the same host
# collector code, thread CPU per collector) once per round, beside
# node_exporter's own node_scrape_collector_duration_seconds (wall; it
# exports no CPU figure per collector).
# CPU time of every thread of PID in ns (schedstat: exact, where utime and
# stime tick at CLK_TCK, 10 ms, too coarse for a 1 ms scrape)
cpu_ns() {
	cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d\n", s }'
}
if ((SCRAPES > 0)); then
	echo
	if ! command -v prometheus-node-exporter >/dev/null; then
		note "prometheus-node-exporter not installed; skipping the scrape-cost section"
		exit 0
	fi
	NE_COLLECTORS=(cpu meminfo loadavg stat vmstat diskstats filesystem netdev netstat sockstat
		pressure uname time filefd entropy conntrack softnet os timex netclass textfile mdadm bonding
		arp thermal_zone hwmon schedstat edac nvme powersupplyclass)
	SROUNDS=${BENCH_SCRAPE_ROUNDS:-5}
	per=$(((SCRAPES + SROUNDS - 1) / SROUNDS))
	mkdir -p "$WORK/textfile"
	printf '# HELP backup_age_seconds Age of the last backup.\n# TYPE backup_age_seconds gauge\nbackup_age_seconds{job="db"} 3600\n' \
		>"$WORK/textfile/backup.prom"
	sport=$(free_port)
	nport=$(free_port "$sport")
	"$SONDE" --listen "127.0.0.1:$sport" --collector.textfile.directory="$WORK/textfile" \
		>"$WORK/scrape-sonde.out" 2>"$WORK/scrape-sonde.log" &
	TRACER_PID=$!
	wait_agent_healthy "$TRACER_PID" "$sport" "$WORK/scrape-sonde.log"
	prometheus-node-exporter --web.listen-address="127.0.0.1:$nport" --collector.disable-defaults \
		"${NE_COLLECTORS[@]/#/--collector.}" --collector.textfile.directory="$WORK/textfile" \
		'--collector.filesystem.mount-points-exclude=^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)' \
		'--collector.netdev.device-exclude=' >"$WORK/node_exporter.log" 2>&1 &
	NODE_EXPORTER_PID=$!
	for ((i = 0; ; i++)); do
		proc_exited "$NODE_EXPORTER_PID" && { cat "$WORK/node_exporter.log" >&2; NODE_EXPORTER_PID=""; die "node_exporter exited during start-up"; }
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$nport/metrics" || true)
		[ "$code" = 200 ] && break
		((i < 100)) || die "node_exporter not serving /metrics after 10 s"
		sleep 0.1
	done
	# Warm-up (first-scrape costs: opening files, Go's lazy init), then measure.
	for ((i = 0; i < 5; i++)); do
		scrape "$sport" /dev/null
		scrape "$nport" /dev/null
	done
	wait_quiet
	: >"$WORK/scrape-times.tsv"
	: >"$WORK/scrape-rounds.tsv"
	: >"$WORK/hostdump.tsv"
	: >"$WORK/ne-collectors.tsv"
	for ((r = 0; r < SROUNDS; r++)); do
		order=(sonde node_exporter)
		((r % 2)) && order=(node_exporter sonde)
		for who in "${order[@]}"; do
			p=$sport pid=$TRACER_PID
			[ $who = node_exporter ] && p=$nport pid=$NODE_EXPORTER_PID
			for enc in identity gzip; do
				c0=$(cpu_ns "$pid")
				res=$(python3 tests/bench/scrape_client.py "$p" "$per" "$enc" \
					"$WORK/scrape-$who-$enc.txt") || die "cannot scrape $who on port $p"
				c1=$(cpu_ns "$pid")
				mode=kept
				[ "$enc" = gzip ] && mode=gzip
				read -r walls wire closed <<<"$res"
				printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$who" "$mode" "$((c1 - c0))" "$wire" \
					"$closed" >>"$WORK/scrape-rounds.tsv"
				tr ',' '\n' <<<"$walls" | sed "s/^/$who\t$mode\t/" >>"$WORK/scrape-times.tsv"
			done
			c0=$(cpu_ns "$pid")
			for ((i = 0; i < per; i++)); do
				t=$(curl -s -f --max-time 5 -o "$WORK/scrape-$who.txt" -w '%{time_total}' \
					"http://127.0.0.1:$p/metrics") || die "cannot scrape $who on port $p"
				printf '%s\tcurl\t%s\n' "$who" "$(awk -v t="$t" 'BEGIN { print t * 1e3 }')" \
					>>"$WORK/scrape-times.tsv"
			done
			c1=$(cpu_ns "$pid")
			printf '%s\t%s\tcurl\t%s\t-\t-\n' "$r" "$who" "$((c1 - c0))" >>"$WORK/scrape-rounds.tsv"
		done
		grep '^node_scrape_collector_duration_seconds{' "$WORK/scrape-node_exporter.txt" |
			sed "s/^/$r\t/" >>"$WORK/ne-collectors.tsv"
		build/sonde-hostdump --collector.textfile.directory="$WORK/textfile" --repeat "$per" |
			sed "s/^/$r\t/" >>"$WORK/hostdump.tsv"
	done
	stop_pid "$NODE_EXPORTER_PID" node_exporter || true
	NODE_EXPORTER_PID=""
	stop_pid "$TRACER_PID" sonde || true
	TRACER_PID=""
	python3 - "$WORK" "$per" "$SROUNDS" "$CLK_TCK" <<'PY'
import re, statistics, sys

work, per, rounds, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
GOAL_MS = 1.0
MODES = ("kept", "gzip", "curl")
wall = {}
for line in open(f"{work}/scrape-times.tsv"):
    who, mode, t = line.rstrip("\n").split("\t")
    wall.setdefault((who, mode), []).append(float(t))
cpu, wire, closed = {}, {}, {}
for line in open(f"{work}/scrape-rounds.tsv"):
    _, who, mode, ns, w, c = line.rstrip("\n").split("\t")
    cpu.setdefault((who, mode), []).append(int(ns) / 1e6 / per)  # ns of all threads
    if w != "-":
        wire[(who, mode)] = int(w)
        closed[(who, mode)] = closed.get((who, mode), 0) + int(c)

def page(path):
    text = open(path).read()
    lines = [l for l in text.splitlines() if l and not l.startswith("#")]
    return len(text), sum(1 for l in lines if l.startswith("node_")), len(lines)

def spread(v):
    m = statistics.median(v)
    return m, min(v), max(v), (max(v) - min(v)) / m if m else float("inf")

noisy = False
print("Scrape cost: %d rounds x %d scrapes each way, interleaved (order alternates), no other HTTP load;"
      % (rounds, per))
print("CPU: all threads' /proc/PID/task/*/schedstat (ns), per round: median [min..max] of the rounds")
print("  kept = one kept connection, as Prometheus scrapes; gzip = the same, Accept-Encoding: gzip;")
print("  curl = one curl process and connection per scrape (the way earlier runs measured)")
print("  %-14s %-5s %28s %12s %12s %10s %14s" % ("", "", "CPU ms/scrape", "wall ms p50", "wall ms p99",
                                                  "bytes", "node_* / all"))
for who in ("sonde", "node_exporter"):
    size, nodes, total = page(f"{work}/scrape-{who}-identity.txt")
    for mode in MODES:
        w = sorted(wall[(who, mode)])
        m, lo, hi, rel = spread(cpu[(who, mode)])
        flag = "  NOISY" if rel > 0.25 else ""
        noisy |= rel > 0.25
        nbytes = wire.get((who, mode), size) if mode != "curl" else size
        print("  %-14s %-5s %8.3f [%.3f..%.3f]%-7s %12.3f %12.3f %10d %8d / %d" % (
            who if mode == "kept" else "", mode, m, lo, hi, flag, statistics.median(w),
            w[min(len(w) - 1, int(len(w) * 0.99))], nbytes, nodes, total))
for mode in MODES:
    ms, mn = statistics.median(cpu[("sonde", mode)]), statistics.median(cpu[("node_exporter", mode)])
    print("  sonde / node_exporter (%s): CPU %.2fx (%.1fx cheaper), wall (p50) %.2fx" % (
        mode, ms / mn, mn / ms if ms else float("nan"),
        statistics.median(wall[("sonde", mode)]) / statistics.median(wall[("node_exporter", mode)])))
if closed.get(("sonde", "kept")):
    print("  note: sonde closed the kept connection %d times" % closed[("sonde", "kept")])
for mode, what in (("kept", "over a kept connection, uncompressed"), ("gzip", "over a kept connection, gzip"),
                   ("curl", "one curl per scrape")):
    ms = statistics.median(cpu[("sonde", mode)])
    print("  sonde's whole page, %s: %.3f ms CPU per scrape against a goal of <= %.3f ms: %s" % (
        what, ms, GOAL_MS, "met" if ms <= GOAL_MS else "NOT MET (%.2fx over)" % (ms / GOAL_MS)))
print("  (sonde's CPU includes its own sonde_*/process metrics, serving HTTP and tracing the scrapes)")

# per collector: sonde-hostdump thread CPU (us) vs node_exporter's wall per collector
hd, ne = {}, {}
for line in open(f"{work}/hostdump.tsv"):
    _, c, us = line.rstrip("\n").split("\t")
    hd.setdefault(c, []).append(float(us))
for line in open(f"{work}/ne-collectors.tsv"):
    m = re.match(r'\d+\tnode_scrape_collector_duration_seconds\{collector="([^"]+)"\} (\S+)', line)
    if m:
        ne.setdefault(m.group(1), []).append(float(m.group(2)) * 1e6)
print()
print("Host collectors per scrape: sonde CPU us (build/sonde-hostdump, median [min..max] of the rounds)")
print("vs node_exporter wall us (node_scrape_collector_duration_seconds, median of the rounds)")
print("  %-12s %26s %14s" % ("collector", "sonde CPU us", "node_exp. wall"))
for c in sorted(hd, key=lambda c: -statistics.median(hd[c])):
    m, lo, hi, rel = spread(hd[c]) if statistics.median(hd[c]) else (0, 0, 0, 0)
    n = "%14.1f" % statistics.median(ne[c]) if c in ne else "%14s" % "-"
    flag = "  NOISY" if c != "total" and rel > 0.5 and m > 20 else ""
    print("  %-12s %8.1f [%7.1f..%7.1f]%s%s" % (c, m, lo, hi, n, flag))
if noisy:
    print("  NOISY: the page CPU varied by more than 25% between rounds (shared machine?)")
PY
fi
