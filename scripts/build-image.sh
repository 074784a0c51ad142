#!/usr/bin/env bash
# `make image`: an OCI image of the agent, built offline with buildah from
# scratch: build/sonde, the shared libraries it links, libcurl.so.4 and its
# own (loaded only for OTLP export), the dynamic loader, the CA bundle for
# https OTLP endpoints. Nothing is downloaded; buildah keeps its storage
# under build/image so the host's /var/lib/containers is left alone.
# Output: build/sonde-image.tar (oci-archive, tag sonde:VERSION).
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${VERSION:-$(sed -n 's/^#define SONDE_VERSION "\(.*\)"/\1/p' user/config.h)}
OUT=build/image
ROOT=$OUT/rootfs
ARCHIVE=build/sonde-image.tar
BUILDAH=(buildah --root "$PWD/$OUT/storage" --runroot "$PWD/$OUT/run" --storage-driver vfs)

[ -x build/sonde ] || { echo "build-image: build/sonde missing (make all)" >&2; exit 1; }
rm -rf "$ROOT" "$ARCHIVE"
mkdir -p "$ROOT/usr/local/bin" "$ROOT/etc/ssl/certs" "$ROOT/tmp" "$ROOT/run/sonde" "$ROOT/proc" \
	"$ROOT/sys" "$ROOT/dev"
chmod 1777 "$ROOT/tmp"
install -m 0755 build/sonde "$ROOT/usr/local/bin/sonde"

# Every library of the agent and of libcurl (dlopen()ed for OTLP), at the
# path the loader resolves it to, plus the loader itself.
curl_so=$(ldconfig -p | awk '/libcurl\.so\.4 .*x86-64|libcurl\.so\.4 \(libc6,AArch64\)/ {print $NF; exit}')
[ -n "$curl_so" ] || curl_so=$(ldconfig -p | awk '/libcurl\.so\.4/ {print $NF; exit}')
libs=$( (ldd build/sonde; [ -n "$curl_so" ] && echo "x => $curl_so (0)" && ldd "$curl_so") |
	awk '/=> \// {print $3} /^\s*\/.*ld-linux/ {print $1}' | sort -u)
for l in $libs; do
	mkdir -p "$ROOT$(dirname "$l")"
	cp -L "$l" "$ROOT$l"
done
printf '/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n/lib/aarch64-linux-gnu\n/usr/lib/aarch64-linux-gnu\n' \
	> "$ROOT/etc/ld.so.conf"
ldconfig -r "$ROOT" 2>/dev/null || true
[ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/"
echo "sonde:x:0:0:sonde:/:/usr/local/bin/sonde" > "$ROOT/etc/passwd"

ctr=$("${BUILDAH[@]}" from --quiet scratch)
trap '"${BUILDAH[@]}" rm "$ctr" >/dev/null 2>&1 || true' EXIT
"${BUILDAH[@]}" copy --quiet "$ctr" "$ROOT" / >/dev/null
"${BUILDAH[@]}" config --entrypoint '["/usr/local/bin/sonde"]' --cmd '["--listen", "0.0.0.0:9464"]' \
	--port 9464/tcp --label org.opencontainers.image.title=sonde \
	--label org.opencontainers.image.version="$VERSION" \
	--label org.opencontainers.image.description="eBPF observability agent" "$ctr"
"${BUILDAH[@]}" commit --quiet --format oci --rm "$ctr" "sonde:$VERSION" >/dev/null
trap - EXIT
"${BUILDAH[@]}" push --quiet "sonde:$VERSION" "oci-archive:$ARCHIVE:sonde:$VERSION"
"${BUILDAH[@]}" rmi --quiet "sonde:$VERSION" >/dev/null 2>&1 || true
echo "image sonde:$VERSION: $ARCHIVE ($(du -k "$ARCHIVE" | cut -f1) KiB compressed layer archive," \
	"$(du -sk "$ROOT" | cut -f1) KiB unpacked: agent $(du -k "$ROOT/usr/local/bin/sonde" | cut -f1) KiB," \
	"$(echo "$libs" | wc -w) libraries)"
