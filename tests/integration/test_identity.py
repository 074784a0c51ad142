"""Integration: who a process is, against a real containerd (Debian's
containerd + runc), started here with its own root, state and socket.

Run it holding the test lock (it starts agents):
    flock /tmp/sonde-agent.lock python3 tests/integration/test_identity.py

Workloads, all started before the agent, all serving HTTP on 127.0.0.1:
  - a podman container named web1 (`podman run --rootfs`, cgroupfs manager),
    its name asked of podman's API socket (`podman system service`);
  - pod shop/checkout-7d9f8b6c5d-x2k4q, container "web": `ctr run` with the
    kubelet's io.kubernetes.* labels, a 64-hex id and a cgroupfs-driver path
    (/kubepods/besteffort/pod<uid>/<id>); its sandbox (a container labelled
    io.cri-containerd.kind=sandbox, as the CRI plugin makes it) carries the
    pod label pod-template-hash → owner Deployment "checkout";
  - pod bank/ledger-0, container "api": a systemd-driver path
    (kubepods.slice/.../kubepods-besteffort-pod<uid_>.slice/cri-containerd-<id>.scope);
    its sandbox carries app.kubernetes.io/name=ledger-api and the StatefulSet
    labels → service.name "ledger-api", owner StatefulSet "ledger";
  - a plain process with OTEL_SERVICE_NAME=pay-api and
    OTEL_RESOURCE_ATTRIBUTES=service.namespace=payments;
  - a process in the cgroup v2 system.slice/sonde-test-web.service.
The containers run python3's http.server (the host's /usr bind-mounted read
only into a minimal rootfs): busybox httpd forks a child per connection that
is gone before the agent can read its /proc, so its requests would be named
by the executable alone (see README "Identity", limits).

Checks: the RED series (with --metrics-pod-labels) carry service_name,
service_namespace, k8s_namespace_name, k8s_pod_name and container_id exactly,
with exact request counts; sonde_target_info carries the whole identity (pod,
uid, container, owner); --print spans carries the resource attributes. Then,
with the runtime socket absent, hanging (accepts, never answers) and
answering garbage: /metrics answers within 1 s on every scrape while lookups
fail, the requests are counted exactly under the cgroup's identity
(container_id, executable name), the failure is logged once and
sonde_runtime_info is 0.

Not here: a real kubelet and API server (the test stands in for the kubelet
by setting its labels and cgroup paths itself); tgid reuse (tests/unit/
test_identity.c forces it with ns_last_pid)."""
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Agent, check, check_eq, finish, free_port, parse_metrics, series,  # noqa: E402
                     spawn, wait_until)
from test_otlp import Receiver, server_spans, start_agent  # noqa: E402

CTR_NS = "k8s.io"
T = tempfile.mkdtemp(prefix="sonde-ident-")
SOCK = os.path.join(T, "containerd.sock")
CGROOT = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") else "/sys/fs/cgroup"
UNIT = "sonde-test-web.service"
_containers = []
_cgroups = []
_made = []  # cgroup directories this test created itself
_containerd = []
PODMAN = ["podman", "--root", os.path.join(T, "podroot"), "--runroot", os.path.join(T, "podrun"),
          "--cgroup-manager=cgroupfs", "--events-backend=file"]
PODMAN_SOCK = os.path.join(T, "podman.sock")
_podman = []


def ctr(*args, timeout=30):
    return subprocess.run(["ctr", "-a", SOCK, "-n", CTR_NS, *args], capture_output=True, text=True,
                          timeout=timeout)


def start_containerd():
    conf = os.path.join(T, "config.toml")
    with open(conf, "w") as f:
        f.write(f'''version = 2
root = "{T}/root"
state = "{T}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{SOCK}"
[ttrpc]
  address = "{SOCK}.ttrpc"
''')
    _containerd.append(spawn(["containerd", "--config", conf], stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(T, "containerd.log"), "w")))
    wait_until("containerd socket", lambda: os.path.exists(SOCK) and ctr("version").returncode == 0,
               timeout=30)


def rootfs():
    d = os.path.join(T, "rootfs")
    os.makedirs(os.path.join(d, "usr"))
    os.makedirs(os.path.join(d, "www"))
    os.makedirs(os.path.join(d, "tmp"))
    os.symlink("usr/lib", os.path.join(d, "lib"))
    os.symlink("usr/lib64", os.path.join(d, "lib64"))
    with open(os.path.join(d, "www", "index.html"), "w") as f:
        f.write("sonde identity test\n")
    return d


def run_pod(root, pod, ns, container, cgroup_of, port, pod_labels):
    """A sandbox (pod labels) and one app container serving on port; returns
    (container id, pod uid, pid)."""
    uid = str(uuid.uuid4())
    cid, sandbox = secrets.token_hex(32), secrets.token_hex(32)
    kubelet = ["--label", f"io.kubernetes.pod.name={pod}", "--label", f"io.kubernetes.pod.namespace={ns}",
               "--label", f"io.kubernetes.pod.uid={uid}"]
    sb_labels = [a for k, v in pod_labels.items() for a in ("--label", f"{k}={v}")]
    r = ctr("c", "create", *kubelet, "--label", "io.cri-containerd.kind=sandbox", *sb_labels,
            "--rootfs", root, sandbox, "/usr/bin/true")
    check_eq(r.returncode, 0, f"sandbox of {pod} created ({r.stderr.strip()})")
    _containers.append((sandbox, False))
    cg = cgroup_of(uid, cid)
    _cgroups.append(cg)
    r = ctr("run", "-d", "--net-host", "--mount", "type=bind,src=/usr,dst=/usr,options=rbind:ro",
            *kubelet, "--label", f"io.kubernetes.container.name={container}",
            "--label", "io.cri-containerd.kind=container", "--cgroup", cg, "--rootfs", root, cid,
            "/usr/bin/python3", "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", "/www")
    check_eq(r.returncode, 0, f"container of {pod} runs ({r.stderr.strip()})")
    _containers.append((cid, True))
    wait_until(f"{pod} serves", lambda: curl(port) == "200", timeout=30)
    pid = int(ctr("t", "ls").stdout.split(cid, 1)[1].split()[0])
    return cid, uid, pid


def curl(port, path="/index.html"):
    return subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{port}{path}"],
                          capture_output=True, text=True, timeout=10).stdout


def run_podman(root, port):
    """podman's API service and one container named web1 (--rootfs, cgroupfs
    manager: /libpod_parent/libpod-<id>); returns (id, pid)."""
    _podman.append(spawn([*PODMAN, "system", "service", "--time=0", f"unix://{PODMAN_SOCK}"],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(T, "podman.log"), "w")))
    r = subprocess.run([*PODMAN, "run", "-d", "--name", "web1", "--network", "host",
                        "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
                        "-v", "/usr:/usr:ro", "--rootfs", root, "/usr/bin/python3", "-m", "http.server",
                        str(port), "--bind", "127.0.0.1", "--directory", "/www"],
                       capture_output=True, text=True, timeout=60)
    check_eq(r.returncode, 0, f"podman run ({r.stderr.strip()})")
    cid = r.stdout.strip()
    wait_until("podman container serves", lambda: curl(port) == "200", timeout=30)
    wait_until("podman API socket", lambda: os.path.exists(PODMAN_SOCK), timeout=30)
    pid = int(subprocess.run([*PODMAN, "inspect", "-f", "{{.State.Pid}}", "web1"], capture_output=True,
                             text=True, timeout=30).stdout.strip())
    return cid, pid


def cleanup_containers():
    if _podman:
        subprocess.run([*PODMAN, "rm", "-f", "-t", "0", "web1"], capture_output=True, timeout=60)
        for p in _podman:
            p.terminate()
            p.wait(10)
    for cid, task in reversed(_containers):
        if task:
            ctr("t", "kill", "-s", "KILL", cid)
            for _ in range(50):
                if ctr("t", "rm", "-f", cid).returncode == 0:
                    break
                time.sleep(0.1)
        ctr("c", "rm", cid)
    for p in _containerd:
        p.terminate()
        p.wait(10)
    # the levels runc left (the container's own cgroup goes with its task);
    # rmdir removes only empty ones, so nobody else's
    for cg in _cgroups:
        parts = cg.strip("/").split("/")
        for ctrl in os.listdir("/sys/fs/cgroup"):
            for depth in range(len(parts), 0, -1):
                try:
                    os.rmdir(os.path.join("/sys/fs/cgroup", ctrl, *parts[:depth]))
                except OSError:
                    pass
    # podman's cgroupfs parent, when it is empty again (conmon's level too)
    for ctrl in os.listdir("/sys/fs/cgroup"):
        base = os.path.join("/sys/fs/cgroup", ctrl, "libpod_parent")
        if _podman and os.path.isdir(base):
            for sub in os.listdir(base):
                if os.path.isdir(os.path.join(base, sub)):
                    try:
                        os.rmdir(os.path.join(base, sub))
                    except OSError:
                        pass
            try:
                os.rmdir(base)
            except OSError:
                pass
    for d in reversed(_made):
        try:
            os.rmdir(d)
        except OSError:
            pass
    shutil.rmtree(T, ignore_errors=True)


def python_server(port, env=None):
    return spawn([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                  "--directory", os.path.join(T, "rootfs", "www")],
                 env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def red(m, port, svc, count_ns, ns, k8s_ns, pod="", cid="", route="/index.html"):
    return series(m, "http_server_request_duration_seconds_count", http_request_method="GET",
                  http_response_status_code="200", http_route=route, service_name=svc,
                  server_port=str(port), error_type="", service_namespace=ns, k8s_namespace_name=k8s_ns,
                  k8s_pod_name=pod, container_id=cid)


def target_info(m, pid):
    """Labels of the sonde_target_info series of pid, or None."""
    for (name, labels), v in m.items():
        d = dict(labels)
        if name == "sonde_target_info" and d.get("process_pid") == str(pid) and v == 1:
            return d
    return None


def main():
    start_containerd()
    root = rootfs()
    p_checkout, p_ledger, p_pay, p_unit = free_port(), free_port(), free_port(), free_port()
    cid_a, uid_a, pid_a = run_pod(root, "checkout-7d9f8b6c5d-x2k4q", "shop", "web",
                                  lambda uid, cid: f"/kubepods/besteffort/pod{uid}/{cid}", p_checkout,
                                  {"pod-template-hash": "7d9f8b6c5d"})
    cid_b, uid_b, pid_b = run_pod(
        root, "ledger-0", "bank", "api",
        lambda uid, cid: (f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod"
                          f"{uid.replace('-', '_')}.slice/cri-containerd-{cid}.scope"), p_ledger,
        {"app.kubernetes.io/name": "ledger-api", "statefulset.kubernetes.io/pod-name": "ledger-0",
         "controller-revision-hash": "ledger-5c9d8f7b6"})
    p_podman = free_port()
    cid_p, pid_p = run_podman(root, p_podman)
    pay = python_server(p_pay, {"OTEL_SERVICE_NAME": "pay-api",
                                "OTEL_RESOURCE_ATTRIBUTES": "service.namespace=payments,team=core"})
    unit_cg = os.path.join(CGROOT, "system.slice", UNIT)
    for d in (os.path.dirname(unit_cg), unit_cg):
        if not os.path.isdir(d):
            os.mkdir(d)
            _made.append(d)
    web = python_server(p_unit)
    with open(os.path.join(unit_cg, "cgroup.procs"), "w") as f:
        f.write(str(web.pid))
    for port in (p_pay, p_unit):
        wait_until(f"server on {port}", lambda: curl(port, "/") == "200")
    with open(f"/proc/{web.pid}/cgroup") as f:
        check(f"0::/system.slice/{UNIT}" in f.read(), f"process moved into system.slice/{UNIT}")

    print("== containerd labels, podman name, OTEL_SERVICE_NAME, systemd unit", flush=True)
    rcv = Receiver()
    a = start_agent({"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.url, "OTEL_BSP_SCHEDULE_DELAY": "200"},
                    "--containerd-socket", SOCK, "--podman-socket", PODMAN_SOCK, "--metrics-pod-labels",
                    "--no-host-metrics", print_spans=True)
    # the worker's first /proc rescan asks containerd and podman for the three containers
    wait_until("the containers looked up", lambda: (series(a.metrics(), "sonde_runtime_lookups_total",
                                                           result="ok") or 0) >= 3, timeout=20)
    n = {p_checkout: 3, p_ledger: 4, p_pay: 2, p_unit: 5, p_podman: 6}
    for port, k in n.items():
        for _ in range(k):
            check_eq(curl(port, "/index.html"), "200", f"request to {port}")
    m = wait_until("ledger requests counted",
                   lambda: (lambda m: m if red(m, p_ledger, "ledger-api", 0, "bank", "bank", "ledger-0", cid_b)
                            == 4 else None)(a.metrics()), fatal=False) or a.metrics()
    check_eq(red(m, p_checkout, "checkout", 0, "shop", "shop", "checkout-7d9f8b6c5d-x2k4q", cid_a), 3,
             "checkout: RED series with pod, namespace, container id")
    check_eq(red(m, p_ledger, "ledger-api", 0, "bank", "bank", "ledger-0", cid_b), 4,
             "ledger: service.name from app.kubernetes.io/name")
    check_eq(red(m, p_pay, "pay-api", 0, "payments", ""), 2, "OTEL_SERVICE_NAME and service.namespace")
    check_eq(red(m, p_unit, "sonde-test-web", 0, "", ""), 5, "systemd unit names the service")
    check_eq(red(m, p_podman, "web1", 0, "", "", "", cid_p), 6, "podman: the container's name")
    ti = target_info(m, pid_p) or {}
    check_eq((ti.get("service_name"), ti.get("container_name"), ti.get("container_id")), ("web1", "web1", cid_p),
             "sonde_target_info of the podman container")
    check_eq(target_info(m, pid_a), {
        "service_name": "checkout", "service_namespace": "shop",
        "service_instance_id": "shop.checkout-7d9f8b6c5d-x2k4q.web", "process_pid": str(pid_a),
        "process_executable_name": os.path.basename(os.readlink("/usr/bin/python3")),
        "k8s_namespace_name": "shop", "k8s_pod_name": "checkout-7d9f8b6c5d-x2k4q", "k8s_pod_uid": uid_a,
        "k8s_container_name": "web", "k8s_deployment_name": "checkout", "container_id": cid_a},
        "sonde_target_info of the checkout container")
    check_eq(target_info(m, pid_b), {
        "service_name": "ledger-api", "service_namespace": "bank", "service_instance_id": "bank.ledger-0.api",
        "process_pid": str(pid_b), "process_executable_name": os.path.basename(os.readlink("/usr/bin/python3")),
        "k8s_namespace_name": "bank", "k8s_pod_name": "ledger-0", "k8s_pod_uid": uid_b,
        "k8s_container_name": "api", "k8s_statefulset_name": "ledger", "container_id": cid_b},
        "sonde_target_info of the ledger container (systemd-driver cgroup)")
    ti = target_info(m, web.pid) or {}
    check_eq((ti.get("service_name"), ti.get("systemd_unit")), ("sonde-test-web", UNIT),
             "sonde_target_info of the unit's process")
    spans = [s for s in a.spans() if s["kind"] == "server" and s["local_port"] == p_checkout]
    check_eq(len(spans), 3, "checkout server spans")
    for s in spans:
        check_eq({k: s.get(k) for k in ("service", "k8s.namespace.name", "k8s.pod.name", "k8s.pod.uid",
                                        "k8s.container.name", "k8s.deployment.name", "container.id",
                                        "service.namespace", "container.runtime")},
                 {"service": "checkout", "k8s.namespace.name": "shop", "k8s.pod.name": "checkout-7d9f8b6c5d-x2k4q",
                  "k8s.pod.uid": uid_a, "k8s.container.name": "web", "k8s.deployment.name": "checkout",
                  "container.id": cid_a, "service.namespace": "shop", "container.runtime": "containerd"},
                 "checkout span identity")
    # OTLP: one resource per process, carrying the identity
    got = wait_until("checkout spans over OTLP", lambda: (lambda s: s if len(s) >= 3 else None)(
        server_spans(rcv.records("/v1/traces"), p_checkout)), fatal=False) or []
    check_eq(len(got), 3, "checkout server spans over OTLP")
    want = {"service.name": "checkout", "service.namespace": "shop", "k8s.namespace.name": "shop",
            "k8s.pod.name": "checkout-7d9f8b6c5d-x2k4q", "k8s.pod.uid": uid_a, "k8s.container.name": "web",
            "k8s.deployment.name": "checkout", "container.id": cid_a, "container.runtime": "containerd",
            "service.instance.id": "shop.checkout-7d9f8b6c5d-x2k4q.web", "process.pid": pid_a,
            "process.command": "/usr/bin/python3"}
    for ra, _ in got:
        check_eq({k: ra.get(k) for k in want}, want, "checkout OTLP resource")
    got = server_spans(rcv.records("/v1/traces"), p_ledger)
    check_eq(sorted({(ra.get("service.name"), ra.get("k8s.statefulset.name"), ra.get("k8s.pod.name"))
                     for ra, _ in got}), [("ledger-api", "ledger", "ledger-0")], "ledger OTLP resource")
    spans = [s for s in a.spans() if s["kind"] == "server" and s["local_port"] == p_pay]
    check_eq([(s["service"], s.get("service.namespace")) for s in spans], [("pay-api", "payments")] * 2,
             "pay-api spans")
    res_s = series(m, "sonde_identity_resolve_seconds_total") or 0
    nres = series(m, "sonde_identity_resolutions_total") or 0
    rescan = series(m, "sonde_identity_rescan_seconds")
    print(f"   measured: {nres:.0f} identities resolved in {res_s * 1e3:.2f} ms of loop time "
          f"({res_s / max(nres, 1) * 1e6:.0f} us each); worker /proc rescan {rescan * 1e3:.2f} ms "
          f"({len([d for d in os.listdir('/proc') if d.isdigit()])} processes)", flush=True)
    check(rescan is not None and rescan < 1.0, f"/proc rescan under 1 s ({rescan})")
    check_eq(a.stop(), 0, "agent exits 0")

    print("== runtime socket absent, hanging, garbage: the loop never waits", flush=True)
    hang_path, junk_path = os.path.join(T, "hang.sock"), os.path.join(T, "junk.sock")
    stop = threading.Event()

    def server(path, answer):
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        s.listen(16)
        s.settimeout(0.2)
        held = []
        while not stop.is_set():
            try:
                c, _ = s.accept()
            except socket.timeout:
                continue
            if answer:
                try:
                    c.settimeout(0.5)
                    c.recv(4096)
                    c.sendall(answer)
                except OSError:
                    pass
            held.append(c)  # never closed until the end: a runtime that hangs
        for c in held:
            c.close()
        s.close()

    for path, answer in ((hang_path, None), (junk_path, b"HTTP/1.1 400 Bad Request\r\n\r\n" + b"\xff" * 64)):
        threading.Thread(target=server, args=(path, answer), daemon=True).start()
    wait_until("fake sockets", lambda: os.path.exists(hang_path) and os.path.exists(junk_path))
    for what, path in (("absent", os.path.join(T, "absent.sock")), ("hanging", hang_path),
                       ("garbage", junk_path)):
        a = Agent("--containerd-socket", path, "--podman-socket", "none", "--runtime-timeout", "1000",
                  "--metrics-pod-labels", "--no-host-metrics", name=f"agent ({what} runtime)")
        worst = 0.0
        for _ in range(3):
            check_eq(curl(p_checkout), "200", f"request ({what})")
            t0 = time.monotonic()
            m = a.metrics()
            worst = max(worst, time.monotonic() - t0)
            time.sleep(0.3)
        exe = os.path.basename(os.readlink("/usr/bin/python3"))
        m = wait_until(f"requests counted ({what})", lambda: (lambda m: m if red(
            m, p_checkout, exe, 0, "", "", "", cid_a) == 3 else None)(a.metrics()), fatal=False) or a.metrics()
        check_eq(red(m, p_checkout, exe, 0, "", "", "", cid_a), 3,
                 f"{what} runtime: requests counted under the cgroup's identity")
        check(worst < 1.0, f"{what} runtime: /metrics answered in {worst * 1e3:.0f} ms (< 1000)")
        check_eq(series(m, "sonde_runtime_info", runtime="containerd", socket=path), 0.0,
                 f"{what} runtime: sonde_runtime_info 0")
        wait_until(f"a failed lookup ({what})", lambda: (series(a.metrics(), "sonde_runtime_lookups_total",
                                                                result="failed") or 0) >= 1, timeout=10)
        logged = [(r.get("runtime"), r.get("socket")) for r in a.log_records()
                  if r.get("@message", "").startswith("container runtime not answering")]
        check_eq(logged, [("containerd", path)], f"{what} runtime: logged once")
        check_eq(a.stop(), 0, f"{what} runtime: agent exits 0")
        print(f"   {what}: worst /metrics {worst * 1e3:.0f} ms", flush=True)
    stop.set()
    for p in (pay, web):
        p.terminate()
        p.wait(5)


if __name__ == "__main__":
    try:
        main()
    finally:
        cleanup_containers()
    finish("test_identity")
