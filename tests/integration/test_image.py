"""Integration: the deployable artefacts.

Run it holding the test lock (it starts an agent, in a container):
    flock /tmp/sonde-agent.lock python3 tests/integration/test_image.py

  1. `scripts/build-image.sh` (`make image`) builds build/sonde-image.tar
     offline with buildah; its size is printed.
  2. podman (its own storage under a temporary directory) loads it and runs
     it the way deploy/kubernetes/daemonset.yaml does: the capability list
     read from the manifest (every other capability dropped), a read-only
     root filesystem, the host's PID namespace and network, /sys/kernel,
     /sys/fs/cgroup (read-only), /run/sonde and the host's /run (read-only)
     mounted. /healthz must answer 200 (every required hook attached) and
     /metrics must carry sonde_build_info; a request to a server on the host
     must show up as a span of the host process; SIGTERM stops it with
     status 0.
  3. `systemd-analyze verify` accepts deploy/systemd/sonde.service (with
     ExecStart pointed at build/sonde), where systemd-analyze exists.

Not here: a kubelet applying the manifest (no Kubernetes on this host); the
test reads the capabilities, mounts and flags from the manifest instead."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ROOT, check, check_eq, finish, free_port, http_get, http_status,  # noqa: E402
                     parse_metrics, series, spawn, wait_until)

MANIFEST = os.path.join(ROOT, "deploy", "kubernetes", "daemonset.yaml")
UNIT = os.path.join(ROOT, "deploy", "systemd", "sonde.service")
T = tempfile.mkdtemp(prefix="sonde-image-")
PODMAN = ["podman", "--root", os.path.join(T, "root"), "--runroot", os.path.join(T, "run"),
          "--cgroup-manager=cgroupfs", "--events-backend=file", "--storage-driver", "vfs"]


def manifest_caps():
    with open(MANIFEST) as f:
        text = f.read()
    add = re.search(r"^\s*add:\s*\[([^\]]*)\]", text, re.M)
    drop = re.search(r"^\s*drop:\s*\[([^\]]*)\]", text, re.M)
    args = re.findall(r"^\s+- (--[a-z-]+=\S+)\s*$", text, re.M)
    return ([c.strip() for c in add.group(1).split(",")] if add else [],
            [c.strip() for c in drop.group(1).split(",")] if drop else [], args, text)


def main():
    print("== make image", flush=True)
    t0 = time.monotonic()
    r = subprocess.run([os.path.join(ROOT, "scripts", "build-image.sh")], capture_output=True, text=True,
                       timeout=300)
    check_eq(r.returncode, 0, f"build-image.sh ({r.stderr.strip()[-300:]})")
    print(f"   {r.stdout.strip()} in {time.monotonic() - t0:.1f} s", flush=True)
    archive = os.path.join(ROOT, "build", "sonde-image.tar")
    check(os.path.getsize(archive) < 40 << 20, f"image archive under 40 MiB ({os.path.getsize(archive)} bytes)")
    r = subprocess.run([*PODMAN, "load", "-q", "-i", archive], capture_output=True, text=True, timeout=120)
    check_eq(r.returncode, 0, f"podman load ({r.stderr.strip()})")
    image = r.stdout.strip().split()[-1] if r.stdout.strip() else "localhost/sonde:0.1.0"

    add, drop, args, text = manifest_caps()
    check("seccompProfile: {type: Unconfined}" in text, "the manifest: seccomp unconfined (see its comment)")
    check_eq(drop, ["ALL"], "the manifest drops every capability")
    check("privileged: false" in text and "readOnlyRootFilesystem: true" in text and "hostPID: true" in text,
          "the manifest: not privileged, read-only root, hostPID")
    check("spec.nodeName" in text, "the manifest: node name from the downward API")
    print(f"   capabilities from the manifest: {', '.join(add)}; args {' '.join(args)}", flush=True)
    port = free_port()
    os.makedirs("/run/sonde", exist_ok=True)
    print("== the image under podman, as the DaemonSet runs it", flush=True)
    run = spawn([*PODMAN, "run", "--rm", "--name", "sonde-image-test", "--pid=host", "--network=host",
                 "--read-only", "--cap-drop=ALL", "--cap-add=" + ",".join(add), "--security-opt",
                 "no-new-privileges", "--security-opt", "seccomp=unconfined",
                 "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096",
                 "-v", "/sys/kernel:/sys/kernel", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro",
                 "-v", "/run/sonde:/run/sonde", "-v", "/run:/host/run:ro", image,
                 *[a for a in args if not a.startswith("--listen=")], f"--listen=127.0.0.1:{port}",
                 "--no-host-metrics"],
                stdout=open(os.path.join(T, "agent.out"), "w"), stderr=open(os.path.join(T, "agent.log"), "w"))
    ok = wait_until("/healthz 200 from the container", lambda: run.poll() is None and
                    http_status(f"http://127.0.0.1:{port}/healthz") == 200, timeout=60, fatal=False)
    check(ok, "/healthz answers 200 under the manifest's capabilities")
    if not ok:
        with open(os.path.join(T, "agent.log")) as f:
            print(f.read()[-3000:], flush=True)
    else:
        m = parse_metrics(http_get(f"http://127.0.0.1:{port}/metrics")[1].decode())
        check_eq(series(m, "sonde_build_info", version="0.1.0"), 1.0, "sonde_build_info from the image")
        # a request on the host, seen from the container
        srv = spawn([sys.executable, "-m", "http.server", str(p := free_port()), "--bind", "127.0.0.1",
                     "--directory", T], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until("host server up", lambda: http_status(f"http://127.0.0.1:{p}/") == 200)
        for _ in range(3):
            http_get(f"http://127.0.0.1:{p}/")
        exe = os.path.basename(os.readlink(f"/proc/{srv.pid}/exe"))
        got = wait_until("host requests counted", lambda: series(
            parse_metrics(http_get(f"http://127.0.0.1:{port}/metrics")[1].decode()),
            "http_server_request_duration_seconds_count", http_request_method="GET",
            http_response_status_code="200", http_route="/", service_name=exe, server_port=str(p),
            error_type="") == 4.0, fatal=False)
        check(got, "4 host requests (3 + the readiness probe) counted by the containerised agent")
        srv.terminate()
    subprocess.run([*PODMAN, "stop", "-t", "15", "sonde-image-test"], capture_output=True, timeout=60)
    try:
        check_eq(run.wait(30), 0, "the containerised agent exits 0 on SIGTERM")
    except subprocess.TimeoutExpired:
        check(False, "the containerised agent stops within 30 s")

    print("== systemd unit", flush=True)
    if shutil.which("systemd-analyze"):
        unit = os.path.join(T, "sonde.service")
        with open(UNIT) as f:
            body = f.read().replace("/usr/local/bin/sonde", os.path.join(ROOT, "build", "sonde"))
        with open(unit, "w") as f:
            f.write(body)
        r = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True, timeout=60)
        check_eq((r.returncode, r.stdout.strip() + r.stderr.strip()), (0, ""), "systemd-analyze verify")
    else:
        print("   note: systemd-analyze not installed: the unit is not verified here", flush=True)


if __name__ == "__main__":
    try:
        main()
    finally:
        subprocess.run([*PODMAN, "rm", "-f", "-t", "0", "sonde-image-test"], capture_output=True, timeout=60)
        subprocess.run([*PODMAN, "rmi", "-a", "-f"], capture_output=True, timeout=120)
        shutil.rmtree(T, ignore_errors=True)
    finish("test_image")
