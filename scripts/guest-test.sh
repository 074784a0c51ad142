#!/usr/bin/env bash
# Second-kernel test: runs build/sonde inside Debian's stock 6.1 kernel under
# QEMU (TCG, no KVM needed), where kprobes and fentry exist, so the code paths
# the 6.18 host cannot take are exercised: the fentry and kprobe tcp hooks, the
# tracepoint fallback, the hash store for per-thread syscall arguments (forced:
# 6.1 does accept task-local storage in tracepoint programs), an older
# verifier, and sonde mounting tracefs itself. Each run makes the same HTTP
# requests (busybox wget -> busybox httpd) and the counts sonde reports on
# /metrics and in its spans must match them exactly.
#
# Usage (root, after `make all`):   scripts/guest-test.sh
#
# The guest kernel package is downloaded and unpacked (never installed) into
# $GUEST_DIR/kernel and cached there; the initramfs is rebuilt on every run
# from build/sonde (+ the shared libraries ldd names), static busybox and
# tests/guest/{init.sh,run-in-guest.sh}. The serial console is saved to
# $GUEST_DIR/console.log. Exit status 0 only if every check passes.
#
# Env:
#   GUEST_MODES           runs, space or comma separated (default: "auto fentry kprobe
#                         tracepoint auto+hash" when `sonde --help` lists --attach-mode,
#                         else "auto"); ATTACH[+ARGS] = --attach-mode ATTACH
#                         [--syscall-args ARGS]. 6.1 accepts task-local storage in
#                         tracepoint programs, so the hash store runs only when forced.
#   GUEST_DIR             cache and work dir (default build/guest)
#   GUEST_TIMEOUT         seconds for the whole VM run (default 600)
#   GUEST_HEALTH_TIMEOUT  seconds sonde may take to become healthy in the guest (default 90)
#   GUEST_KERNEL_PKG      exact kernel package, e.g. linux-image-6.1.0-56-amd64
#                         (default: what linux-image-amd64 depends on, else the
#                         newest linux-image-6.1.*-amd64; a cached one if apt knows none)
#   GUEST_KERNEL_FORMAT   auto (vmlinux if it could be extracted, else bzImage) | vmlinux | bzimage
#   GUEST_SMP GUEST_MEM GUEST_CPU   QEMU vCPUs (default 2), MiB (1024), CPU model (qemu64)
#   SONDE_BIN             agent binary (default build/sonde)
set -euo pipefail

cd "$(dirname "$(readlink -f "$0")")/.."
GUEST_DIR=${GUEST_DIR:-build/guest}
GUEST_TIMEOUT=${GUEST_TIMEOUT:-600}
GUEST_HEALTH_TIMEOUT=${GUEST_HEALTH_TIMEOUT:-90}
GUEST_KERNEL_FORMAT=${GUEST_KERNEL_FORMAT:-auto}
GUEST_SMP=${GUEST_SMP:-2}
GUEST_MEM=${GUEST_MEM:-1024}
GUEST_CPU=${GUEST_CPU:-qemu64}
SONDE_BIN=${SONDE_BIN:-build/sonde}
# Requests the guest makes per mode (tests/guest/run-in-guest.sh): the expected counts.
N_INDEX=3 N_A=2 N_MISSING=2
N_ALL=$((N_INDEX + N_A + N_MISSING))

T0=$(date +%s)
say() { echo "guest-test: $*"; }
die() { echo "guest-test: ERROR: $*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "run as root (QEMU image build needs mknod; sonde runs as root in the guest)"
[ -x "$SONDE_BIN" ] || die "$SONDE_BIN not found: run 'make all' first"
for f in tests/guest/init.sh tests/guest/run-in-guest.sh; do
	[ -r "$f" ] || die "$f missing"
done
mkdir -p "$GUEST_DIR"
GUEST_DIR=$(readlink -f "$GUEST_DIR")

# ---------------------------------------------------------------- 1. host tools
apt_updated=0
apt_update() { [ $apt_updated = 1 ] || { apt-get update -qq; apt_updated=1; }; }
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
# busybox-static ships /bin/busybox statically linked (the guest has no libc of its own)
if ! dpkg-query -W -f '${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed'; then
	need+=(busybox-static)
fi
command -v xz >/dev/null || need+=(xz-utils)
command -v gzip >/dev/null || need+=(gzip)
command -v ldd >/dev/null || need+=(libc-bin)
if [ ${#need[@]} -gt 0 ]; then
	say "installing ${need[*]}"
	apt_update
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
file_is_static() { ! LC_ALL=C ldd "$1" >/dev/null 2>&1; }
file_is_static /bin/busybox || die "/bin/busybox is not static (busybox-static package expected)"

# ---------------------------------------------------------------- 2. guest kernel
KDIR=$GUEST_DIR/kernel
mkdir -p "$KDIR"
resolve_kernel_pkg() {
	local p
	p=$(apt-cache depends linux-image-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-6\.1\.[0-9]+-[0-9]+-amd64$/ { print $2; exit }')
	[ -n "$p" ] || p=$(apt-cache search --names-only '^linux-image-6\.1\.[0-9]+-[0-9]+-amd64$' 2>/dev/null |
		awk '{ print $1 }' | sort -V | tail -n 1)
	echo "$p"
}
cached_kernel_pkg() {
	# shellcheck disable=SC2012
	ls -d "$KDIR"/linux-image-6.1.*-amd64 2>/dev/null | xargs -r -n1 basename | sort -V | tail -n 1
}
KPKG=${GUEST_KERNEL_PKG:-$(resolve_kernel_pkg)}
if [ -z "$KPKG" ]; then
	KPKG=$(cached_kernel_pkg)
	if [ -z "$KPKG" ]; then
		apt_update
		KPKG=$(resolve_kernel_pkg)
	fi
fi
[ -n "$KPKG" ] || die "cannot resolve a linux-image-6.1.*-amd64 package (apt-cache knows none)"

fetch_kernel() { # PKG: download and unpack (dpkg -x, never installed); keep only boot/
	local pkg=$1 tmp=$KDIR/.$1.tmp
	rm -rf "$tmp"
	mkdir -p "$tmp"
	say "downloading $pkg (apt-get download; not installed)"
	# as root apt warns that the download is unsandboxed: harmless
	(cd "$tmp" && apt-get download -q "$pkg" 2>&1 | grep -v -e 'unsandboxed' -e '^$' || true)
	if ! ls "$tmp"/"$pkg"_*.deb >/dev/null 2>&1; then
		apt_update # stale package lists name a version the mirror no longer has
		(cd "$tmp" && apt-get download -q "$pkg" 2>&1 | grep -v -e 'unsandboxed' -e '^$' || true)
	fi
	ls "$tmp"/"$pkg"_*.deb >/dev/null 2>&1 || return 1
	dpkg -x "$tmp"/"$pkg"_*.deb "$tmp/x"
	mkdir -p "$KDIR/$pkg"
	mv "$tmp/x/boot" "$KDIR/$pkg/boot" # the 400 MB of modules are not needed: BPF, kprobes, BTF are built in
	rm -rf "$tmp"
}
if ! ls "$KDIR/$KPKG"/boot/vmlinuz-* >/dev/null 2>&1; then
	if ! fetch_kernel "$KPKG"; then
		old=$(cached_kernel_pkg)
		[ -n "$old" ] || die "cannot download $KPKG"
		say "cannot download $KPKG; using cached $old"
		KPKG=$old
	fi
fi
VMLINUZ=$(ls "$KDIR/$KPKG"/boot/vmlinuz-*)
VMLINUX=$KDIR/$KPKG/vmlinux

# The bzImage wraps an xz-compressed ELF vmlinux; booting that ELF directly
# (PVH entry) skips the in-guest decompression, which is slow under TCG.
extract_vmlinux() {
	local img=$1 out=$2 off
	command -v xz >/dev/null || return 1
	for off in $(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$img" | cut -d: -f1); do
		# xz stops reading after the stream: tail's SIGPIPE is expected
		if { tail -c +$((off + 1)) "$img" || :; } | xz -dc --single-stream >"$out.tmp" 2>/dev/null &&
			[ "$(head -c 4 "$out.tmp" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
			mv "$out.tmp" "$out"
			return 0
		fi
	done
	rm -f "$out.tmp"
	return 1
}
if [ "$GUEST_KERNEL_FORMAT" != bzimage ] && [ ! -s "$VMLINUX" ]; then
	extract_vmlinux "$VMLINUZ" "$VMLINUX" || say "could not extract an ELF vmlinux from $VMLINUZ; booting the bzImage"
fi
case $GUEST_KERNEL_FORMAT in
auto) if [ -s "$VMLINUX" ]; then KIMG=$VMLINUX; else KIMG=$VMLINUZ; fi ;;
vmlinux) [ -s "$VMLINUX" ] || die "no ELF vmlinux for $KPKG"; KIMG=$VMLINUX ;;
bzimage) KIMG=$VMLINUZ ;;
*) die "GUEST_KERNEL_FORMAT must be auto, vmlinux or bzimage" ;;
esac

# ---------------------------------------------------------------- 3. initramfs
IR=$GUEST_DIR/initramfs
rm -rf "$IR"
mkdir -p "$IR"/{bin,sbin,dev,proc,sys,tmp,root,etc,usr/bin,usr/sbin,www,ctl}
cp /bin/busybox "$IR/bin/busybox"
cp /bin/busybox "$IR/ctl/busybox-ctl" # its own exe name → its own service_name in sonde
mknod -m 600 "$IR/dev/console" c 5 1
mknod -m 666 "$IR/dev/null" c 1 3
install -m 755 tests/guest/init.sh "$IR/init"
install -m 755 tests/guest/run-in-guest.sh "$IR/run-in-guest.sh"
echo "root:x:0:0:root:/root:/bin/sh" >"$IR/etc/passwd"
echo "root:x:0:" >"$IR/etc/group"

# binary + every shared library and the loader, at the paths ldd reports
add_elf() { # SRC DEST
	local src=$1 dst=$2 lib
	install -D -m 755 "$src" "$IR$dst"
	if LC_ALL=C ldd "$src" | grep -q 'not found'; then
		LC_ALL=C ldd "$src" >&2
		die "$src: missing shared libraries"
	fi
	for lib in $(LC_ALL=C ldd "$src" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
		[ -e "$IR$lib" ] || install -D -m 755 "$(readlink -f "$lib")" "$IR$lib"
	done
}
add_elf "$SONDE_BIN" /usr/bin/sonde
# diagnosis helper: full verifier log of a rejected program (sonde's log keeps only its head)
VPROBE=$GUEST_DIR/verifier-probe
if cc -O2 -Wall tests/guest/verifier-probe.c -lbpf -o "$VPROBE" 2>"$GUEST_DIR/verifier-probe.err"; then
	add_elf "$VPROBE" /usr/bin/verifier-probe
	# make deletes these as intermediates of the skeletons; asking for them by name keeps them
	BPF_DIR=$(dirname "$SONDE_BIN")
	if [ ! -r "$BPF_DIR/sock.bpf.o" ] && [ -r "$BPF_DIR/../Makefile" ]; then
		make -s -C "$BPF_DIR/.." build/sock.bpf.o build/tcp.bpf.o >/dev/null 2>&1 ||
			say "note: cannot make build/sock.bpf.o: no verifier logs on failure"
	fi
	for o in "$BPF_DIR/sock.bpf.o" "$BPF_DIR/tcp.bpf.o"; do
		[ -r "$o" ] && install -D -m 644 "$o" "$IR/bpf/$(basename "$o")"
	done
else
	say "note: cannot build tests/guest/verifier-probe.c (see $GUEST_DIR/verifier-probe.err): no verifier logs on failure"
fi
# bpftool (optional) only names the BPF programs for the verified-instruction report
if command -v bpftool >/dev/null && ! file_is_static "$(command -v bpftool)"; then
	add_elf "$(readlink -f "$(command -v bpftool)")" /usr/sbin/bpftool
fi

# web root with known content
{
	echo "<html><body><h1>sonde guest test</h1>"
	for i in $(seq 1 40); do echo "<p>line $i of a page of known size</p>"; done
	echo "</body></html>"
} >"$IR/www/index.html"
echo "a plain text file for the guest test" >"$IR/www/a.txt"

INITRD=$GUEST_DIR/initrd.cpio.gz
(cd "$IR" && find . | LC_ALL=C sort | busybox cpio -o -H newc 2>/dev/null) | gzip -1 >"$INITRD"

# ---------------------------------------------------------------- 4. boot
if [ -z "${GUEST_MODES:-}" ]; then
	# Read the whole text first: `grep -q` leaving early would end sonde
	# with SIGPIPE, and pipefail would then take the flag for missing.
	help_text=$("$SONDE_BIN" --help 2>&1 || true)
	if grep -q -- '--attach-mode' <<<"$help_text"; then
		GUEST_MODES="auto fentry kprobe tracepoint auto+hash"
	else
		GUEST_MODES=auto
		say "sonde has no --attach-mode flag yet: testing auto only"
	fi
fi
read -r -a MODES <<<"$(echo "$GUEST_MODES" | tr ',' ' ')"
[ ${#MODES[@]} -gt 0 ] || die "GUEST_MODES is empty"
modes_csv=$(IFS=,; echo "${MODES[*]}")

LOG=$GUEST_DIR/console.log
say "kernel $KPKG ($(basename "$KIMG")), initramfs $(du -k "$INITRD" | cut -f1) KiB, modes: ${MODES[*]}"
say "booting QEMU (TCG, $GUEST_SMP vCPU, $GUEST_MEM MiB, timeout ${GUEST_TIMEOUT}s); console: $LOG"
t_boot=$(date +%s)
set +e
timeout -k 10 "$GUEST_TIMEOUT" qemu-system-x86_64 \
	-accel tcg -cpu "$GUEST_CPU" -m "$GUEST_MEM" -smp "$GUEST_SMP" \
	-nodefaults -no-user-config -display none -serial stdio -no-reboot \
	-kernel "$KIMG" -initrd "$INITRD" \
	-append "console=ttyS0 quiet panic=-1 guest_modes=$modes_csv guest_health_timeout=$GUEST_HEALTH_TIMEOUT" \
	</dev/null 2>&1 | tee "$LOG" |
	grep --line-buffered -a -E '^(GUEST-(STEP|RESULT|LOG|DONE|INFO)|.*(Kernel panic|BUG:|WARNING:|Oops))' |
	sed -u 's/\r$//; s/^/  | /'
rcs=("${PIPESTATUS[@]}")
set -e
qrc=${rcs[0]}
t_end=$(date +%s)
say "QEMU exited $qrc after $((t_end - t_boot))s"

# ---------------------------------------------------------------- 5. verdict
CON=$GUEST_DIR/console.txt
tr -d '\r' <"$LOG" >"$CON"
pass=0 fail=0
ok() { pass=$((pass + 1)); printf '  PASS  %s\n' "$*"; }
ko() { fail=$((fail + 1)); printf '  FAIL  %s\n' "$*"; }
check() { # DESCRIPTION GOT EXPECTED
	if [ "$2" = "$3" ]; then ok "$1 = $2"; else ko "$1 = $2 (expected $3)"; fi
}

declare -A R
for m in "${MODES[@]}"; do
	line=$(grep -a "^GUEST-RESULT mode=$m " "$CON" | tail -n 1 || true)
	R[$m.present]=$([ -n "$line" ] && echo 1 || echo 0)
	for kv in $line; do
		case $kv in *=*) R[$m.${kv%%=*}]=${kv#*=} ;; esac
	done
done
get() { echo "${R[$1.$2]:-missing}"; }

echo
say "checks"
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then ko "VM finished within ${GUEST_TIMEOUT}s (timed out)"; else check "QEMU exit status" "$qrc" 0; fi
check "guest reached the end (GUEST-DONE)" "$(grep -ac '^GUEST-DONE' "$CON")" 1
check "guest tracefs mounted at boot (sonde must mount it)" \
	"$(sed -n 's/^GUEST-INFO .*tracefs_at_boot=\([0-9]\).*/\1/p' "$CON")" 0
check "kernel splats (BUG/WARNING/Oops/panic) on the console" \
	"$(grep -acE 'Kernel panic|BUG:|WARNING:|Oops' "$CON")" 0

COUNT_KEYS=(server_index server_a server_missing_404 server_total client_index client_a client_missing_404
	client_total spans_server spans_client spans_server_index spans_server_a spans_server_missing_404
	spans_client_index spans_client_a spans_client_missing_404)
declare -A WANT=(
	[server_index]=$N_INDEX [server_a]=$N_A [server_missing_404]=$N_MISSING [server_total]=$N_ALL
	[client_index]=$N_INDEX [client_a]=$N_A [client_missing_404]=$N_MISSING [client_total]=$N_ALL
	[spans_server]=$N_ALL [spans_client]=$N_ALL
	[spans_server_index]=$N_INDEX [spans_server_a]=$N_A [spans_server_missing_404]=$N_MISSING
	[spans_client_index]=$N_INDEX [spans_client_a]=$N_A [spans_client_missing_404]=$N_MISSING
)
first=${MODES[0]}
for m in "${MODES[@]}"; do
	echo "  -- mode $m"
	if [ "$(get "$m" present)" != 1 ]; then
		ko "mode $m: no GUEST-RESULT line"
		continue
	fi
	check "$m: sonde exit status" "$(get "$m" exit)" 0
	check "$m: /healthz 200" "$(get "$m" healthy)" 1
	check "$m: 'sonde running' logged" "$(get "$m" sonde_running_logged)" 1
	if [ "$(get "$m" healthy)" != 1 ]; then
		ko "$m: sonde never became healthy: the other checks of this run are skipped (see diagnosis)"
		continue
	fi
	check "$m: wget requests answered as expected (200/200/404)" "$(get "$m" wget_ok)" $N_ALL
	for k in "${COUNT_KEYS[@]}"; do check "$m: $k" "$(get "$m" "$k")" "${WANT[$k]}"; done
	s=$(get "$m" probe_tcp_sendmsg) r=$(get "$m" probe_tcp_recvmsg)
	case ${m%%+*} in
	auto | default)
		if [ "$s" = fentry ] && [ "$r" = fentry ]; then
			ok "$m: tcp hooks chose fentry (sonde_probe_info)"
		elif [ "$s" = kprobe ] && [ "$r" = kprobe ]; then
			ok "$m: tcp hooks chose kprobe, NOT fentry (fentry was not possible: see GUEST-LOG)"
		else
			ko "$m: tcp hooks tcp_sendmsg=$s tcp_recvmsg=$r (expected fentry, or kprobe)"
		fi
		want_log=$s
		;;
	*)
		check "$m: sonde_probe_info tcp_sendmsg mode" "$s" "${m%%+*}"
		check "$m: sonde_probe_info tcp_recvmsg mode" "$r" "${m%%+*}"
		want_log=${m%%+*}
		;;
	esac
	# 'hook attached' names the mode; with the tracepoint fallback sonde may log a warning instead
	for h in tcp_sendmsg tcp_recvmsg; do
		got=$(get "$m" log_$h)
		if [ "$want_log" = tracepoint ] && [ "$got" = none ]; then
			ok "$m: no 'hook attached' log for $h (tracepoint fallback)"
		else
			check "$m: 'hook attached' log mode for $h" "$got" "$want_log"
		fi
	done
	# Capture tier: 6.1 has no socket tracepoints (6.3+), so auto and fentry
	# capture at fexit/tcp_sendmsg,tcp_recvmsg; kprobe and tracepoint, and a
	# forced --syscall-args store, use the syscall tracepoints.
	ct=$(get "$m" capture_tier)
	case $m in
	*+*) want_tier=syscall ;;
	auto | default | fentry) want_tier=fentry ;;
	*) want_tier=syscall ;;
	esac
	if [ "$want_tier" = fentry ] && [ "$s" = kprobe ] && [ "$ct" = syscall ]; then
		ok "$m: capture tier syscall (fentry was not possible, as for the tcp hooks)"
	else
		check "$m: capture tier (sonde_probe_info payload_capture)" "$ct" "$want_tier"
	fi
	check "$m: capture tier in the log" "$(get "$m" log_capture_tier)" "$ct"
	sa=$(get "$m" syscall_args)
	case $m in
	*+hash) check "$m: syscall args store (forced)" "$sa" hash ;;
	*+task) check "$m: syscall args store (forced)" "$sa" task_storage ;;
	*)
		if [ "$ct" = fentry ]; then
			check "$m: syscall args (fentry tier reads registers)" "$sa" registers
		elif [ "$sa" = task_storage ] || [ "$sa" = hash ]; then
			ok "$m: syscall args store chosen by sonde = $sa"
		else
			ko "$m: syscall args store = $sa (expected task_storage or hash)"
		fi
		;;
	esac
	check "$m: ring buffer drops" "$(get "$m" ringbuf_drops)" 0
	check "$m: error log lines" "$(get "$m" error_lines)" 0
	# service_name is the executable's basename: httpd and wget are busybox applets
	check "$m: service_name of the server series" "$(get "$m" server_services)" busybox
	check "$m: service_name of the client series" "$(get "$m" client_services)" busybox
	# On loopback every byte one busybox process sends, another receives
	# (httpd sends file bodies with sendfile(2)), plus the 70-byte
	# traceparent line sonde inserted into each injected request.
	tx=$(get "$m" bytes_tx) rx=$(get "$m" bytes_rx) inj=$(get "$m" injected)
	[[ $inj =~ ^[0-9]+$ ]] || inj=0
	# --inject-port names httpd's port: every wget request carries the header
	check "$m: requests injected with traceparent (sonde_injected_total)" "$inj" "$(get "$m" wget_ok)"
	if [[ $tx =~ ^[0-9]+$ && $rx =~ ^[0-9]+$ && $tx -gt 0 && $((tx + 70 * inj)) -eq $rx ]]; then
		ok "$m: busybox bytes received = transmitted $tx + 70 x $inj injected (process_network_io_bytes_total)"
	else
		ko "$m: busybox bytes transmitted = $tx, received = $rx, injected = $inj: expected rx = tx + 70 x injected, tx > 0 (process_network_io_bytes_total)"
	fi
done
echo "  -- across runs"
# /init leaves tracefs unmounted: the first sonde mounts it (and says so), the later ones find it
check "runs in which sonde logged mounting tracefs" \
	"$(for m in "${MODES[@]}"; do get "$m" tracefs_mounted_by_sonde; done | grep -c '^1$' || true)" 1
if [ ${#MODES[@]} -gt 1 ]; then
	for k in "${COUNT_KEYS[@]}"; do
		vals=$(for m in "${MODES[@]}"; do echo "$m=$(get "$m" "$k")"; done | tr '\n' ' ')
		if [ "$(for m in "${MODES[@]}"; do get "$m" "$k"; done | sort -u | wc -l)" = 1 ]; then
			ok "same $k in every mode ($vals)"
		else
			ko "same $k in every mode ($vals)"
		fi
	done
	# the same traffic each time: every attach mode must count the same bytes
	for k in bytes_tx bytes_rx; do
		vals=$(for m in "${MODES[@]}"; do echo "$m=$(get "$m" "$k")"; done | tr '\n' ' ')
		if [ "$(for m in "${MODES[@]}"; do get "$m" "$k"; done | sort -u | wc -l)" = 1 ]; then
			ok "same $k (process_network_io_bytes_total) in every mode ($vals)"
		else
			ko "same $k (process_network_io_bytes_total) in every mode ($vals)"
		fi
	done
fi

# verified instructions per BPF program (from /proc/PID/fdinfo, named with bpftool)
if grep -aq '^GUEST-PROG ' "$CON"; then
	echo
	say "BPF programs loaded by sonde in the guest (verified_insns from fdinfo)"
	say "(all programs for the first run; for the others the tcp hooks and the total)"
	for m in "${MODES[@]}"; do
		grep -a "^GUEST-PROG mode=$m " "$CON" | awk -v m="$m" -v all="$([ "$m" = "$first" ] && echo 1 || echo 0)" '
			{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
			  if (all || v["type"] != "tracepoint")
				printf "     %-11s %-10s %-24s %8s\n", m, v["type"], v["name"], v["verified_insns"]
			  t += v["verified_insns"]; n++ }
			END { if (n) printf "     %-11s %d programs, %d verified instructions in total\n", m, n, t }'
	done
fi

if [ $fail -gt 0 ]; then
	echo
	say "diagnosis from the guest (everything is in $CON):"
	if grep -aqE '^GUEST-(LOG|DIAG|METRIC)' "$CON"; then
		# sonde's warn/error lines, the first lines of its debug run, the metrics seen
		{ grep -aE '^GUEST-LOG ' "$CON" | grep -av ' tail: ' | awk '!seen[$0]++' | head -n 40
		  grep -aE '^GUEST-DIAG mode=[^ ]+ (debug-run|healthz|sonde|cannot)' "$CON" | head -n 12
		  grep -aE '^GUEST-METRIC ' "$CON" | grep -av 'hook="sys_' | head -n 80; } | cut -c1-600 | sed 's/^/  | /' || true
		# verifier: which programs the guest kernel rejects, and the end of the first log
		if grep -aq 'VERIFIER prog=.* result=rejected' "$CON"; then
			echo "  | verifier (tests/guest/verifier-probe on build/sock.bpf.o with sonde's fallback settings):"
			grep -a 'VERIFIER prog=' "$CON" | sed 's/^GUEST-DIAG mode=[^ ]* //' | awk '!seen[$0]++' |
				sed 's/^/  |   /' || true
			p1=$(grep -a -m1 'VERIFIER prog=.* result=rejected' "$CON" | sed 's/.*prog=\([^ ]*\).*/\1/')
			grep -a "VERIFIER-LOG prog=$p1 " "$CON" | awk '!seen[$0]++' | tail -n 14 | cut -c1-400 |
				sed 's/^GUEST-DIAG mode=[^ ]* //; s/^/  |   /' || true
		fi
	else
		tail -n 40 "$CON" | sed 's/^/  | /'
	fi
fi

echo
for m in "${MODES[@]}"; do grep -a "^GUEST-RESULT mode=$m " "$CON" | tail -n 1 || true; done
echo
say "total $(($(date +%s) - T0))s (VM $((t_end - t_boot))s); console log: $LOG"
if [ $fail -eq 0 ]; then say "PASS"; else say "FAIL"; fi
echo "guest-test: $pass passed, $fail failed"
[ $fail -eq 0 ]
