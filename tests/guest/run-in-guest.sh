#!/bin/sh
# Runs inside the QEMU guest (busybox sh, Debian's 6.1 kernel), started by
# /init from the initramfs that scripts/guest-test.sh builds.
#
# For each attach mode: start busybox httpd, start sonde, wait for /healthz,
# make a known set of requests with busybox wget, read /metrics, stop sonde
# (SIGINT) and httpd, then print one machine-readable line
#   GUEST-RESULT mode=M key=value ...
# that the host parses and checks. Diagnosis goes to GUEST-LOG (sonde's
# warn/error log lines), GUEST-METRIC (the relevant /metrics lines),
# GUEST-PROG (verified instructions per BPF program) and GUEST-DIAG lines.
#
# Env (set by /init from the kernel command line):
#   GUEST_MODES           runs to make, e.g. "auto fentry kprobe tracepoint auto+hash":
#                         ATTACH[+ARGS] gives --attach-mode ATTACH (none for "default")
#                         and --syscall-args ARGS (task, hash or auto) when +ARGS is given
#   GUEST_HEALTH_TIMEOUT  seconds to wait for /healthz (default 90: TCG is slow)

MODES=${GUEST_MODES:-auto}
HEALTH_TIMEOUT=${GUEST_HEALTH_TIMEOUT:-90}
SONDE=/usr/bin/sonde
HTTP=127.0.0.1:8080
AGENT=127.0.0.1:9464
# Requests made per mode; the host expects exactly these counts back.
N_INDEX=3
N_A=2
N_MISSING=2
# The control traffic (/healthz, /metrics) goes through a copy of busybox
# with another name, so it is its own service_name ("busybox-ctl") and never
# mixes with the "busybox" series under test.
CTL=/ctl/busybox-ctl

now() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
step() { echo "GUEST-STEP mode=$mode t=$(now) $*"; }

ctl_get() { # PATH OUTFILE: GET from sonde's HTTP server, 0 on 200
	timeout 10 $CTL wget -q -O "$2" "http://$AGENT$1" 2>/dev/null
}

# msum FILE METRIC LABEL...: sum of METRIC's samples whose labels include every LABEL.
msum() {
	f=$1 n=$2
	shift 2
	awk -v n="$n" -v want="$*" '
		BEGIN { k = split(want, w, " ") }
		index($0, n "{") == 1 || index($0, n " ") == 1 {
			lb = substr($0, length(n) + 1)
			sub(/}[^}]*$/, "}", lb)
			for (i = 1; i <= k; i++)
				if (!index(lb, "{" w[i]) && !index(lb, "," w[i]))
					next
			s += $NF
		}
		END { printf "%d\n", s }' "$f" 2>/dev/null || echo 0
}

# mvalues FILE METRIC LABEL FILTER...: distinct values of LABEL ("+"-joined) over
# METRIC's samples whose labels include every FILTER.
mvalues() {
	f=$1 n=$2 l=$3
	shift 3
	awk -v n="$n" -v l="$l" -v want="$*" '
		BEGIN { k = split(want, w, " ") }
		index($0, n "{") == 1 {
			for (i = 1; i <= k; i++)
				if (!index($0, "{" w[i]) && !index($0, "," w[i]))
					next
			if (match($0, "[{,]" l "=\"[^\"]*\"")) {
				v = substr($0, RSTART + length(l) + 3, RLENGTH - length(l) - 4)
				if (!(v in seen)) { seen[v] = 1; out = out (out == "" ? "" : "+") v }
			}
		}
		END { print (out == "" ? "none" : out) }' "$f" 2>/dev/null || echo none
}

# probe_mode FILE HOOK: the mode whose sonde_probe_info{hook=HOOK,...} is 1.
probe_mode() {
	awk -v h="hook=\"$2\"" '
		index($0, "sonde_probe_info{") == 1 && index($0, h) && $NF == 1 {
			if (match($0, /mode="[^"]*"/)) { m = substr($0, RSTART + 6, RLENGTH - 7) }
		}
		END { print (m == "" ? "none" : m) }' "$1" 2>/dev/null || echo none
}

# scount FILE REGEX...: number of lines matching every extended REGEX.
scount() {
	f=$1
	shift
	awk -v pats="$*" '
		BEGIN { k = split(pats, p, " ") }
		{ for (i = 1; i <= k; i++) if ($0 !~ p[i]) next; c++ }
		END { print c + 0 }' "$f" 2>/dev/null || echo 0
}

# logfield FILE MESSAGE FIELD [MATCH]: FIELD's string value in the first log line
# with that @message (and containing MATCH, if given).
logfield() {
	grep -F "\"@message\":\"$2\"" "$1" 2>/dev/null | grep -F -- "${4:-}" | head -1 |
		sed -n "s/.*\"$3\":\"\\([^\"]*\\)\".*/\\1/p" | grep . || echo none
}

# wait_gone PID SECONDS: 0 once PID has exited, 1 on timeout.
wait_gone() {
	i=0
	while kill -0 "$1" 2>/dev/null; do
		[ "$i" -ge $(($2 * 10)) ] && return 1
		usleep 100000
		i=$((i + 1))
	done
	return 0
}

# BPF programs held by PID: id, name and verified instructions (fdinfo, 5.16+).
print_progs() {
	pid=$1
	[ -x /usr/sbin/bpftool ] || return 0
	/usr/sbin/bpftool prog show 2>/dev/null |
		awk '/^[0-9]+: / { sub(":", "", $1); for (i = 2; i < NF; i++) if ($i == "name") print $1, $2, $(i + 1) }' \
			>/tmp/prognames
	for fd in /proc/"$pid"/fd/*; do
		[ "$(readlink "$fd" 2>/dev/null)" = "anon_inode:bpf-prog" ] || continue
		awk '/^prog_id:/ { id = $2 } /^verified_insns:/ { v = $2 } END { print id, v }' \
			/proc/"$pid"/fdinfo/"${fd##*/}"
	done | sort -u | while read -r id insns; do
		set -- $(awk -v id="$id" '$1 == id { print $2, $3 }' /tmp/prognames)
		echo "GUEST-PROG mode=$mode id=$id type=${1:-?} name=${2:-?} verified_insns=${insns:-?}"
	done
}

supports_mode_flag=0
$SONDE --help 2>&1 | grep -q -- '--attach-mode' && supports_mode_flag=1

run_mode() {
	mode=$1
	d=/tmp/mode-$mode
	mkdir -p "$d"
	t_start=$(now)

	args="--listen $AGENT --print spans"
	attach=${mode%%+*}
	case $mode in *+*) args="$args --syscall-args ${mode#*+}" ;; esac
	if [ "$attach" != default ]; then
		if [ $supports_mode_flag = 0 ] && [ "$attach" != auto ]; then
			echo "GUEST-RESULT mode=$mode exit=unsupported error=sonde_has_no_--attach-mode_flag"
			return 1
		fi
		# sonde without the flag: auto is its only behaviour
		[ $supports_mode_flag = 1 ] && args="$args --attach-mode $attach"
	fi

	# Injection by a learnt port depends on how fast the first connection is
	# classified; naming the port makes every request injected, so every
	# mode carries the same bytes.
	$SONDE --help 2>&1 | grep -q -- '--inject-port' && args="$args --inject-port ${HTTP##*:}"

	httpd -f -p "$HTTP" -h /www &
	hpid=$!

	step "starting sonde $args"
	# shellcheck disable=SC2086
	$SONDE $args >"$d/spans" 2>"$d/log" &
	spid=$!

	healthy=0 sexit=running
	deadline=$(($(cut -d. -f1 /proc/uptime) + HEALTH_TIMEOUT))
	while [ "$(cut -d. -f1 /proc/uptime)" -lt $deadline ]; do
		if ! kill -0 $spid 2>/dev/null; then
			wait $spid
			sexit=$?
			break
		fi
		if ctl_get /healthz "$d/healthz"; then
			healthy=1
			break
		fi
		usleep 300000
	done
	attach_s=$(since "$t_start")
	step "healthy=$healthy after ${attach_s}s"
	if [ $healthy = 0 ] && [ "$sexit" = running ]; then
		timeout 10 $CTL wget -S -O - "http://$AGENT/healthz" 2>&1 | head -n 12 |
			sed "s/^/GUEST-DIAG mode=$mode healthz-fetch: /"
	fi

	wget_ok=0
	if [ $healthy = 1 ]; then
		print_progs $spid
		req() { # PATH EXPECTED-STATUS
			if timeout 20 wget -q -O /dev/null "http://$HTTP$1" 2>"$d/wget.err"; then
				[ "$2" = 200 ] && wget_ok=$((wget_ok + 1))
			else
				[ "$2" = 404 ] && grep -q 404 "$d/wget.err" && wget_ok=$((wget_ok + 1))
			fi
			return 0
		}
		i=0; while [ $i -lt $N_INDEX ]; do req /index.html 200; i=$((i + 1)); done
		i=0; while [ $i -lt $N_A ]; do req /a.txt 200; i=$((i + 1)); done
		i=0; while [ $i -lt $N_MISSING ]; do req /missing 404; i=$((i + 1)); done

		# Wait (bounded) until every request is counted on both sides, then
		# one more second so that extra, wrongly counted requests show too.
		want=$((N_INDEX + N_A + N_MISSING))
		i=0
		while [ $i -lt 50 ]; do
			ctl_get /metrics "$d/metrics" || :
			s=$(msum "$d/metrics" http_server_request_duration_seconds_count 'server_port="8080"')
			c=$(msum "$d/metrics" http_client_request_duration_seconds_count 'server_port="8080"')
			[ "$s" -ge $want ] && [ "$c" -ge $want ] && break
			usleep 200000
			i=$((i + 1))
		done
		sleep 1
		ctl_get /metrics "$d/metrics" || echo "GUEST-DIAG mode=$mode cannot fetch /metrics"
	fi

	if [ "$sexit" = running ]; then
		step "stopping sonde (SIGINT)"
		kill -INT $spid
		if wait_gone $spid 30; then
			wait $spid
			sexit=$?
		else
			echo "GUEST-DIAG mode=$mode sonde still running 30 s after SIGINT: killing it"
			kill -KILL $spid
			wait $spid
			sexit=hung
		fi
	fi
	kill $hpid 2>/dev/null
	wait $hpid 2>/dev/null
	step "sonde exit=$sexit"

	m=$d/metrics sp=$d/spans
	[ -f "$m" ] || : >"$m"
	srv="http_server_request_duration_seconds_count"
	cli="http_client_request_duration_seconds_count"
	# Series are told apart by port, route and status, not by service_name: sonde
	# resolves /proc/PID/exe in userspace, after short-lived processes (each wget,
	# each forked httpd child) may have exited, so the name depends on timing
	# ("busybox", or the comm "wget"/"httpd"). The names seen are reported.
	common='http_request_method="GET" server_port="8080"'
	ok200='http_response_status_code="200"'
	# shellcheck disable=SC2086
	set -- \
		server_index "$(msum "$m" $srv $common $ok200 'http_route="/index.html"')" \
		server_a "$(msum "$m" $srv $common $ok200 'http_route="/a.txt"')" \
		server_missing_404 "$(msum "$m" $srv $common 'http_response_status_code="404"')" \
		server_total "$(msum "$m" $srv 'server_port="8080"')" \
		client_index "$(msum "$m" $cli $common $ok200 'http_route="/index.html"' 'server_address="127.0.0.1"')" \
		client_a "$(msum "$m" $cli $common $ok200 'http_route="/a.txt"' 'server_address="127.0.0.1"')" \
		client_missing_404 "$(msum "$m" $cli $common 'http_response_status_code="404"' 'server_address="127.0.0.1"')" \
		client_total "$(msum "$m" $cli 'server_port="8080"')"
	counts="$*"

	# spans on port 8080 (JSON lines on sonde's stdout)
	S='"kind":"server" "local_port":8080[,}]'
	C='"kind":"client" "peer_port":8080[,}]'
	I='"method":"GET" "target":"/index.html" "status":200[,}]'
	A='"method":"GET" "target":"/a.txt" "status":200[,}]'
	M='"method":"GET" "target":"/missing" "status":404[,}]'
	# shellcheck disable=SC2086
	spans="spans_server=$(scount "$sp" $S) spans_client=$(scount "$sp" $C)"
	# shellcheck disable=SC2086
	spans="$spans spans_server_index=$(scount "$sp" $S $I) spans_server_a=$(scount "$sp" $S $A)"
	# shellcheck disable=SC2086
	spans="$spans spans_server_missing_404=$(scount "$sp" $S $M) spans_client_index=$(scount "$sp" $C $I)"
	# shellcheck disable=SC2086
	spans="$spans spans_client_a=$(scount "$sp" $C $A) spans_client_missing_404=$(scount "$sp" $C $M)"
	spans="$spans spans_incomplete=$(scount "$sp" '"incomplete":true') spans_all=$(scount "$sp" .)"

	log=$d/log
	if grep -q '"@message":"mounted tracefs' "$log"; then tracefs_by_sonde=1; else tracefs_by_sonde=0; fi
	warn_lines=$(grep -c '"@level":"warn"' "$log")
	error_lines=$(grep -c '"@level":"error"' "$log")
	running=$(grep -c '"@message":"sonde running"' "$log")

	line="GUEST-RESULT mode=$mode exit=$sexit healthy=$healthy attach_s=$attach_s wget_ok=$wget_ok"
	# shellcheck disable=SC2086
	set -- $counts
	while [ $# -ge 2 ]; do line="$line $1=$2"; shift 2; done
	line="$line $spans"
	line="$line probe_tcp_sendmsg=$(probe_mode "$m" tcp_sendmsg) probe_tcp_recvmsg=$(probe_mode "$m" tcp_recvmsg)"
	line="$line log_tcp_sendmsg=$(logfield "$log" 'hook attached' mode '"hook":"tcp_sendmsg"')"
	line="$line log_tcp_recvmsg=$(logfield "$log" 'hook attached' mode '"hook":"tcp_recvmsg"')"
	line="$line syscall_args=$(logfield "$log" 'socket tracer attached' syscall_args)"
	line="$line capture_tier=$(probe_mode "$m" payload_capture)"
	line="$line log_capture_tier=$(logfield "$log" 'socket tracer attached' capture_tier)"
	line="$line tracefs_mounted_by_sonde=$tracefs_by_sonde sonde_running_logged=$running"
	line="$line server_services=$(mvalues "$m" $srv service_name 'server_port="8080"')"
	line="$line client_services=$(mvalues "$m" $cli service_name 'server_port="8080"')"
	# bytes of the processes under test (httpd and wget are both busybox; the
	# control client is busybox-ctl, sonde never counts itself)
	line="$line bytes_tx=$(msum "$m" process_network_io_bytes_total 'service_name="busybox"' 'network_io_direction="transmit"')"
	line="$line bytes_rx=$(msum "$m" process_network_io_bytes_total 'service_name="busybox"' 'network_io_direction="receive"')"
	line="$line bytes_unknown=$(msum "$m" process_network_io_bytes_total 'service_name="unknown"')"
	line="$line injected=$(msum "$m" sonde_injected_total)"
	line="$line bytes_services=$(mvalues "$m" process_network_io_bytes_total service_name)"
	line="$line unmatched_responses=$(msum "$m" sonde_http_unmatched_responses_total)"
	line="$line ringbuf_drops=$(msum "$m" sonde_ringbuf_drops_total)"
	line="$line parse_errors=$(msum "$m" sonde_parse_errors_total)"
	line="$line warn_lines=$warn_lines error_lines=$error_lines mode_s=$(since "$t_start")"

	# diagnosis first, the result line last
	grep -E '"@level":"(warn|error)"' "$log" | head -20 | sed "s/^/GUEST-LOG mode=$mode /"
	if [ $healthy = 0 ] || [ "$running" = 0 ]; then
		tail -n 30 "$log" | sed "s/^/GUEST-LOG mode=$mode tail: /"
		[ -s "$d/healthz" ] && sed "s/^/GUEST-DIAG mode=$mode healthz: /" "$d/healthz"
	fi
	grep -E '^(http_(server|client)_request_duration_seconds_count|sonde_probe_info|process_network_io_bytes_total|sonde_ringbuf_drops_total|sonde_spans_total|sonde_parse_errors_total|sonde_http_un)' "$m" |
		sed "s/^/GUEST-METRIC mode=$mode /"
	echo "$line"
	[ $healthy = 1 ] && [ "$sexit" = 0 ]
}

# A run that failed to load gets a second, debug-level run whose libbpf lines
# (verifier log included, as far as sonde's log keeps it) explain why.
diagnose() {
	mode=$1
	d=/tmp/diag-$mode
	mkdir -p "$d"
	args="--listen $AGENT --log-level debug"
	attach=${mode%%+*}
	case $mode in *+*) args="$args --syscall-args ${mode#*+}" ;; esac
	[ "$attach" != default ] && [ $supports_mode_flag = 1 ] && args="$args --attach-mode $attach"
	# shellcheck disable=SC2086
	$SONDE $args >/dev/null 2>"$d/log" &
	p=$!
	i=0
	while kill -0 $p 2>/dev/null && [ $i -lt 30 ] && ! ctl_get /healthz /dev/null; do
		sleep 1
		i=$((i + 1))
	done
	kill -INT $p 2>/dev/null
	wait_gone $p 30 || kill -KILL $p 2>/dev/null
	wait $p
	grep -E '"@level":"(warn|error)"|"@message":"libbpf"' "$d/log" | grep -v -e 'BEGIN PROG LOAD LOG' -e '^$' |
		tail -n 40 | sed "s/^/GUEST-DIAG mode=$mode debug-run: /"
	# sonde's log keeps only the head of a verifier log; load the socket tracer's
	# programs again as sonde's fallback does (syscall args in the hash) for the tail.
	if [ -x /usr/bin/verifier-probe ] && [ -r /bpf/sock.bpf.o ]; then
		ctb=0
		[ "${mode%%+*}" = tracepoint ] && ctb=1
		key=/tmp/verifier-probe-$ctb
		if [ ! -e $key ]; then
			: >$key
			echo "GUEST-DIAG mode=$mode verifier-probe sock.bpf.o args_in_task=0 count_tcp_bytes=$ctb:"
			/usr/bin/verifier-probe /bpf/sock.bpf.o args_in_task=0 count_tcp_bytes=$ctb 2>&1 |
				sed "s/^/GUEST-DIAG mode=$mode /"
		fi
	fi
}

echo "GUEST-STEP modes=\"$MODES\" attach_mode_flag=$supports_mode_flag sonde=$($SONDE --version 2>&1 | head -1)"
rc=0
for mode in $MODES; do
	if ! run_mode "$mode"; then
		rc=1
		diagnose "$mode"
	fi
done
exit $rc
