#!/bin/busybox sh
# /init of the guest initramfs built by scripts/guest-test.sh.
# Mounts the pseudo filesystems sonde needs, brings loopback up, runs
# /run-in-guest.sh and powers the VM off. tracefs is deliberately NOT mounted:
# sonde must mount it itself when it is missing, and the test checks that it does.
/bin/busybox mkdir -p /proc /sys /dev /tmp /sbin /usr/bin /usr/sbin
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root TERM=dumb

mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs -o size=256m tmpfs /tmp
ip link set lo up || ifconfig lo 127.0.0.1 up

# Options come on the kernel command line as guest_NAME=VALUE words.
for w in $(cat /proc/cmdline); do
	case $w in
	guest_modes=*) GUEST_MODES=$(echo "${w#guest_modes=}" | tr , ' ') ;;
	guest_health_timeout=*) GUEST_HEALTH_TIMEOUT=${w#guest_health_timeout=} ;;
	esac
done
export GUEST_MODES GUEST_HEALTH_TIMEOUT

if grep -q ' tracefs ' /proc/mounts; then tracefs_at_boot=1; else tracefs_at_boot=0; fi
echo "GUEST-INFO kernel=$(uname -r) cpus=$(grep -c ^processor /proc/cpuinfo)" \
	"mem_kb=$(awk '/MemTotal/{print $2}' /proc/meminfo)" \
	"btf=$([ -r /sys/kernel/btf/vmlinux ] && echo 1 || echo 0)" \
	"tracefs_at_boot=$tracefs_at_boot uptime=$(cut -d' ' -f1 /proc/uptime)"

rc=0
sh /run-in-guest.sh || rc=$?
echo "GUEST-DONE rc=$rc uptime=$(cut -d' ' -f1 /proc/uptime)"
sync
poweroff -f
