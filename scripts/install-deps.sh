#!/usr/bin/env bash
# Installs the Debian packages sonde needs to build, run, test and benchmark.
# Only touches apt when something is missing, so repeated runs are fast.
set -euo pipefail
what=${1:-all}
build_pkgs="clang llvm make gcc pkg-config libbpf-dev bpftool libelf-dev zlib1g-dev libmicrohttpd-dev
	protobuf-c-compiler libprotobuf-c-dev libcurl4-openssl-dev"
# ASan/UBSan runtime for the sanitizer build of the unit tests
test_pkgs_san="libclang-rt-14-dev"
test_pkgs="nginx-light curl python3 prometheus prometheus-node-exporter wrk openssl
	postgresql postgresql-client mariadb-server mariadb-client redis-server redis-tools python3-pymysql"
case "$what" in
build) pkgs="$build_pkgs" ;;
*) pkgs="$build_pkgs $test_pkgs $test_pkgs_san" ;;
esac
missing=()
# The OTLP test receiver decodes with Node (any packaged node works; some
# images ship nodesource's, which bundles npm).
if [ "$what" != build ] && ! command -v npm >/dev/null; then
	command -v node >/dev/null || missing+=(nodejs)
	missing+=(npm)
fi
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
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
