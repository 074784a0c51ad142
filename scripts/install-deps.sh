#!/usr/bin/env bash
# Installs the Debian packages sonde needs to build, run, test and benchmark,
# then checks that every header and tool the build and tests use is really
# there, so a missing package fails here, loudly, not deep inside a suite.
# Only touches apt when something is missing, so repeated runs are fast.
set -euo pipefail
what=${1:-all}
build_pkgs="clang llvm make gcc pkg-config libbpf-dev bpftool libelf-dev zlib1g-dev libmicrohttpd-dev libdeflate-dev
	protobuf-c-compiler libprotobuf-c-dev libcurl4-openssl-dev libnghttp2-dev
	libjson-c-dev"
# ASan/UBSan runtime for the sanitizer build of the unit tests
test_pkgs_san="libclang-rt-14-dev"
# Test clients compiled from tests/integration/*.c: mariadb_client.c (mysql.h),
# tls_static_client.c (openssl/ssl.h, linked against libssl).
test_pkgs_dev="libmariadb-dev libssl-dev"
test_pkgs="nginx-light curl python3 prometheus prometheus-node-exporter wrk openssl
	postgresql postgresql-client mariadb-server mariadb-client redis-server redis-tools python3-pymysql
	python3-grpcio nghttp2-server nghttp2-client lighttpd
	util-linux iproute2 procps containerd runc podman buildah systemd"
# What the build and the tests include or run, and the package that brings it.
# Checked after the install; `check` only checks.
build_needs="h:bpf/libbpf.h:libbpf-dev h:libelf.h:libelf-dev h:zlib.h:zlib1g-dev
	h:microhttpd.h:libmicrohttpd-dev h:libdeflate.h:libdeflate-dev h:protobuf-c/protobuf-c.h:libprotobuf-c-dev h:curl/curl.h:libcurl4-openssl-dev
	h:nghttp2/nghttp2.h:libnghttp2-dev h:json-c/json.h:libjson-c-dev
	c:clang:clang c:llvm-strip:llvm c:bpftool:bpftool c:protoc-c:protobuf-c-compiler c:gcc:gcc c:make:make"
test_needs="h:mysql.h:libmariadb-dev h:openssl/ssl.h:libssl-dev
	c:nginx:nginx-light c:curl:curl c:python3:python3 c:promtool:prometheus c:prometheus-node-exporter:prometheus-node-exporter
	c:wrk:wrk c:openssl:openssl c:psql:postgresql-client c:pgbench:postgresql-client c:mariadb:mariadb-client
	c:mariadbd:mariadb-server c:redis-server:redis-server c:redis-cli:redis-tools c:runuser:util-linux
	c:nghttpd:nghttp2-server c:h2load:nghttp2-client c:nghttp:nghttp2-client c:lighttpd:lighttpd
	c:taskset:util-linux c:ss:iproute2 c:pgrep:procps c:containerd:containerd c:ctr:containerd c:runc:runc
	c:podman:podman c:buildah:buildah c:systemd-analyze:systemd c:node:nodejs c:npm:npm"
case "$what" in
build) pkgs="$build_pkgs"; needs="$build_needs" ;;
check) pkgs=""; needs="$build_needs $test_needs" ;;
*) pkgs="$build_pkgs $test_pkgs $test_pkgs_dev $test_pkgs_san"; needs="$build_needs $test_needs" ;;
esac

# Headers are looked up where the compilers look (mysql.h sits in a subfolder).
have_header() {
	local h=$1 d
	for d in /usr/include /usr/include/x86_64-linux-gnu /usr/include/aarch64-linux-gnu /usr/include/mariadb /usr/local/include; do
		[ -e "$d/$h" ] && return 0
	done
	return 1
}
have_cmd() { command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }

missing=()
if [ "$what" != build ] && [ "$what" != check ] && ! command -v npm >/dev/null; then
	# The OTLP test receiver decodes with Node (any packaged node works; some
	# images ship nodesource's, which bundles npm).
	command -v node >/dev/null || missing+=(nodejs)
	missing+=(npm)
fi
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-deps: missing packages: ${missing[*]} (run as root to install them)" >&2
		exit 1
	fi
	echo "install-deps: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# The prometheus package would start a server through systemd where present;
	# sonde's tests only need its promtool and start their own instances.
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

bad=()
for n in $needs; do
	IFS=: read -r kind name pkg <<<"$n"
	case "$kind" in
	h) have_header "$name" || bad+=("header $name (package $pkg)") ;;
	c) have_cmd "$name" || bad+=("command $name (package $pkg)") ;;
	esac
done
if [ ${#bad[@]} -gt 0 ]; then
	printf 'install-deps: MISSING after install: %s\n' "${bad[@]}" >&2
	exit 1
fi
