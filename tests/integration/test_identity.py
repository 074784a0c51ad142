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

The TCP health, process and run-queue families carry the same identity
labels, checked exactly on a client exec'd into the checkout container and
on sonde_processes. Short-lived processes exec'd into that container (gone
before the agent reads their /proc) are named from the cgroup id the
kernel side reported.

Then, each with an agent of its own:
  - a container that dies before its runtime lookup completes (a stand-in
    in front of the real containerd socket holds the answer back until the
    container is dead): no sonde_target_info series and no container entry
    (sonde_identity_containers) is left for it;
  - a tgid reused (ns_last_pid): the new process gets its own identity;
  - CRI-O: real CRI-O was not available here (not packaged in Debian 12); a
    Python stand-in serves its documented info API (GET /info,
    GET /containers/<id>) for a real process in a crio-<id>.scope cgroup.

Not here: a real kubelet and API server (the test stands in for the kubelet
by setting its labels and cgroup paths itself), and CRI-O itself."""
import os
import secrets
import select
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
from harness import cleanup as harness_cleanup  # noqa: E402
from test_otlp import Receiver, server_spans, start_agent  # noqa: E402
from harness import ROOT  # noqa: E402

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
    harness_cleanup()  # the other processes this test started leave their cgroups
    for d in reversed(_made):
        try:
            os.rmdir(d)
        except OSError:
            pass
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


TCP_CONNECTS = 3


def tcp_sink():
    """A listener here that accepts and closes; returns (port, [accepted])."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    n = [0]

    def loop():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            n[0] += 1
            c.close()

    threading.Thread(target=loop, daemon=True).start()
    return srv.getsockname()[1], n


def target_info(m, pid):
    """Labels of the sonde_target_info series of pid, or None."""
    for (name, labels), v in m.items():
        d = dict(labels)
        if name == "sonde_target_info" and d.get("process_pid") == str(pid) and v == 1:
            return d
    return None


def main():
    # run alone too: the OTLP receiver below needs its decoder (npm)
    if subprocess.run([os.path.join(ROOT, "scripts", "otlp-receiver-deps.sh")]).returncode != 0:
        raise SystemExit("FAIL: cannot install the OTLP receiver's decoder (npm)")
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
    # TCP health, process and run-queue families carry the same identity labels.
    # The servers' listeners predate the agent (their accepts count under
    # "unknown", README), so a client process exec'd into the checkout
    # container makes TCP_CONNECTS outbound connections to a listener here.
    ids_a = dict(service_name="checkout", service_namespace="shop", k8s_namespace_name="shop",
                 k8s_pod_name="checkout-7d9f8b6c5d-x2k4q", container_id=cid_a)
    ids_b = dict(service_name="ledger-api", service_namespace="bank", k8s_namespace_name="bank",
                 k8s_pod_name="ledger-0", container_id=cid_b)
    lport, accepted = tcp_sink()
    r = ctr("t", "exec", "-d", "--exec-id", "client", cid_a, "/usr/bin/python3", "-c",
            "import socket, time\n"
            f"for _ in range({TCP_CONNECTS}):\n"
            f"    socket.create_connection(('127.0.0.1', {lport})).close()\n"
            "time.sleep(600)\n")
    check_eq(r.returncode, 0, f"client exec'd in the checkout container ({r.stderr.strip()})")
    wait_until("the client's connections accepted", lambda: accepted[0] >= TCP_CONNECTS, fatal=False)
    m = wait_until("TCP and process series of the containers", lambda: (lambda m: m if (
        series(m, "sonde_tcp_connections_opened_total", direction="outbound", **ids_a) == TCP_CONNECTS and
        series(m, "sonde_processes", **ids_a) == 2) else None)(a.metrics()), fatal=False) or a.metrics()
    check_eq(series(m, "sonde_tcp_connections_opened_total", direction="outbound", **ids_a), TCP_CONNECTS,
             "checkout: sonde_tcp_connections_opened_total{direction=outbound} with exactly the identity labels")
    check((series(m, "sonde_tcp_connect_duration_seconds_count", **ids_a) or 0) == TCP_CONNECTS,
          "checkout: sonde_tcp_connect_duration_seconds with exactly the identity labels")
    check_eq(series(m, "sonde_processes", **ids_a), 2, "checkout: sonde_processes (server and client) with "
             "exactly the identity labels")
    check_eq(series(m, "sonde_processes", **ids_b), 1, "ledger: sonde_processes with exactly the identity labels")
    for ids in (ids_a, ids_b):
        svc = ids["service_name"]
        check((series(m, "process_memory_usage_bytes", **ids) or 0) > 0,
              f"{svc}: process_memory_usage_bytes with the identity labels")
        check(series(m, "process_cpu_time_seconds_total", cpu_mode="user", **ids) is not None,
              f"{svc}: process_cpu_time_seconds_total with the identity labels")
    check((series(m, "sonde_runqueue_timeslices_total", **ids_a) or 0) > 0 and
          series(m, "sonde_runqueue_wait_seconds_total", **ids_a) is not None,
          "checkout: sonde_runqueue_wait_seconds_total and _timeslices_total with the identity labels")
    check((series(m, "process_network_io_bytes_total", network_io_direction="receive", **ids_b) or 0) > 0,
          "ledger: process_network_io_bytes_total with the identity labels")
    check_eq(series(m, "sonde_processes", service_name="pay-api", service_namespace="payments"), 1,
             "OTEL_SERVICE_NAME process: sonde_processes{service_namespace=payments}")
    check_eq(series(m, "sonde_processes", service_name="sonde-test-web"), 1, "the unit's process: sonde_processes")
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
    a_cid_b[0] = cid_b
    short_lived(a, cid_a, ids_a, lport, accepted, p_ledger)
    m = a.metrics()
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
    dies_before_lookup(root, pid_a)
    tgid_reuse()
    exec_renamed()
    crio_standin()
    for p in (pay, web):
        p.terminate()
        p.wait(5)


SHORT_HTTP, SHORT_TCP = 5, 3
a_cid_b = [""]


def short_lived(a, cid_a, ids_a, lport, accepted, p_ledger):
    """Processes exec'd into the checkout container that are gone before
    the agent reads their /proc: SHORT_HTTP send a request to the ledger,
    read the answer and _exit at once (the agent drains its rings every
    25 ms), SHORT_TCP connect to a listener here and _exit. The kernel side
    reported each one's cgroup with its first connection; the agent names
    them from that cgroup's directory."""
    print("   short-lived processes in the checkout container", flush=True)
    http = ("import os, socket\n"
            f"s = socket.create_connection(('127.0.0.1', {p_ledger}))\n"
            "s.sendall(b'GET /index.html HTTP/1.1\\r\\nHost: ledger\\r\\nConnection: close\\r\\n\\r\\n')\n"
            "while s.recv(65536):\n"
            "    pass\n"
            "os._exit(0)\n")
    tcp = ("import os, socket\n"
           f"socket.create_connection(('127.0.0.1', {lport}))\n"
           "os._exit(0)\n")
    before = accepted[0]
    for i in range(SHORT_HTTP):
        r = ctr("t", "exec", "--exec-id", f"short-http-{i}", cid_a, "/usr/bin/python3", "-c", http)
        check_eq(r.returncode, 0, f"short-lived HTTP client {i} ({r.stderr.strip()})")
    for i in range(SHORT_TCP):
        r = ctr("t", "exec", "--exec-id", f"short-tcp-{i}", cid_a, "/usr/bin/python3", "-c", tcp)
        check_eq(r.returncode, 0, f"short-lived TCP client {i} ({r.stderr.strip()})")
    wait_until("their connections accepted", lambda: accepted[0] >= before + SHORT_TCP, fatal=False)
    want_tcp = TCP_CONNECTS + SHORT_HTTP + SHORT_TCP

    def clients(m):
        return sorted((dict(ls), v) for (n, ls), v in m.items()
                      if n == "http_client_request_duration_seconds_count" and
                      dict(ls).get("server_port") == str(p_ledger) and dict(ls).get("service_name") != "curl")
    m = wait_until("the short-lived clients counted", lambda: (lambda m: m if (
        series(m, "sonde_tcp_connections_opened_total", direction="outbound", **ids_a) == want_tcp and
        sum(v for _, v in clients(m)) >= SHORT_HTTP) else None)(a.metrics()), fatal=False) or a.metrics()
    got = clients(m)
    check_eq([({k: d.get(k) for k in ("service_name", "service_namespace", "k8s_namespace_name", "k8s_pod_name",
                                       "container_id")}, v) for d, v in got],
             [({**ids_a}, float(SHORT_HTTP))],
             "short-lived HTTP clients: one client series, the container's identity, exact count")
    check_eq(series(m, "sonde_tcp_connections_opened_total", direction="outbound", **ids_a), want_tcp,
             "short-lived clients' connections counted under the container's identity")
    by_id = series(m, "sonde_identity_cgroup_id_resolutions_total") or 0
    # How many were gone when first looked up depends on timing (the loop
    # drains every 25 ms; a scrape's /proc scan may meet one alive); the
    # counts above hold either way, and would not without the cgroup id.
    check(1 <= by_id <= SHORT_TCP + SHORT_HTTP,
          f"named from the reported cgroup id: {by_id:.0f} of {SHORT_TCP + SHORT_HTTP} processes")
    print(f"   {by_id:.0f} of {SHORT_HTTP + SHORT_TCP} short-lived processes were gone before their /proc was "
          f"read and were named from their cgroup id", flush=True)
    check_eq(red(m, p_ledger, "ledger-api", 0, "bank", "bank", "ledger-0", a_cid_b[0]), 4 + SHORT_HTTP,
             "ledger: its 4 requests and the short-lived clients'")


class Gate:
    """A stand-in in front of containerd's socket that holds every
    connection until opened, then relays it to the real socket: a runtime
    that answers late, with its real answers."""

    def __init__(self, path, upstream):
        self.path, self.upstream = path, upstream
        self.opened, self.stop = threading.Event(), threading.Event()
        self.accepted = 0
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        s.listen(64)
        s.settimeout(0.2)
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, s):
        while not self.stop.is_set():
            try:
                c, _ = s.accept()
            except socket.timeout:
                continue
            self.accepted += 1
            threading.Thread(target=self._relay, args=(c,), daemon=True).start()
        s.close()

    def _relay(self, c):
        while not self.opened.wait(0.2):
            if self.stop.is_set():
                c.close()
                return
        u = socket.socket(socket.AF_UNIX)
        try:
            u.connect(self.upstream)
            while not self.stop.is_set():
                r, _, _ = select.select([c, u], [], [], 0.5)
                for x in r:
                    data = x.recv(65536)
                    if not data:
                        return
                    (u if x is c else c).sendall(data)
        except OSError:
            pass
        finally:
            c.close()
            u.close()


def dies_before_lookup(root, pid_a):
    """A container whose process serves, is counted, and dies while the
    runtime's answer is still held back: once the exit is seen, the grace
    (10 s) is over and the worker has rescanned /proc (every 10 s), neither
    its process identity nor its container entry is left."""
    print("== a container that dies before its lookup completes leaves no entry", flush=True)
    gate = Gate(os.path.join(T, "gate.sock"), SOCK)
    a = Agent("--containerd-socket", gate.path, "--podman-socket", "none", "--docker-socket", "none",
              "--runtime-timeout", "30000", "--metrics-pod-labels", "--no-host-metrics",
              name="agent (runtime held back)")
    wait_until("the first lookup held at the gate", lambda: gate.accepted >= 1)
    port = free_port()
    cid, uid, pid = run_pod(root, "short-5f6d7c8b9a-q7w2e", "shop", "web",
                            lambda uid, cid: f"/kubepods/besteffort/pod{uid}/{cid}", port,
                            {"pod-template-hash": "5f6d7c8b9a"})
    for _ in range(2):  # and the one run_pod made: 3
        check_eq(curl(port), "200", "request to the short-lived container")
    exe = os.path.basename(os.readlink("/usr/bin/python3"))
    m = wait_until("its requests counted", lambda: (lambda m: m if red(m, port, exe, 0, "", "", "", cid) == 3
                                                    else None)(a.metrics()), fatal=False) or a.metrics()
    check_eq(red(m, port, exe, 0, "", "", "", cid), 3, "requests counted under the cgroup identity "
             "(container_id, executable) while the runtime is held back")
    ti = target_info(m, pid) or {}
    check_eq((ti.get("container_id"), ti.get("k8s_pod_uid"), ti.get("k8s_pod_name")), (cid, uid, None),
             "sonde_target_info: the cgroup's facts, no runtime answer yet")
    check_eq(series(m, "sonde_runtime_lookups_total", result="ok") or 0, 0, "no lookup answered yet")
    # it dies; its container record stays, so the late answer is a full one
    t_kill = time.monotonic()
    ctr("t", "kill", "-s", "KILL", cid)
    wait_until("the container's process gone", lambda: not os.path.exists(f"/proc/{pid}"))
    wait_until("its task stopped", lambda: ctr("t", "rm", cid).returncode == 0, fatal=False)
    wait_until("its exit seen", lambda: target_info(a.metrics(), pid) is None, fatal=False)
    m = a.metrics()
    check(target_info(m, pid) is None, "exit seen: not on sonde_target_info")
    check_eq(series(m, "sonde_runtime_lookups_total", result="ok") or 0, 0,
             "the lookup had not completed when the container died")
    gate.opened.set()
    t_open = time.monotonic()
    m = wait_until("the held-back answers", lambda: (lambda m: m if (target_info(m, pid_a) or {}).get(
        "k8s_pod_name") == "checkout-7d9f8b6c5d-x2k4q" and (series(m, "sonde_runtime_lookups_total", result="ok")
                                                        or 0) >= 3 else None)(a.metrics()), fatal=False)

    def gone(m):
        return (series(m, "sonde_identity_containers") == 2 and not any(
            n == "sonde_target_info" and (dict(ls).get("container_id") == cid or dict(ls).get("process_pid") ==
                                          str(pid)) for (n, ls) in m))
    m = wait_until("its entries gone", lambda: (lambda m: m if gone(m) else None)(a.metrics()), timeout=45,
                   fatal=False) or a.metrics()
    print(f"   answers let through {t_open - t_kill:.1f} s after the kill (within the 10 s exit grace: the "
          f"late answer met the exited entry); listed nowhere and its container entry dropped "
          f"{time.monotonic() - t_kill:.1f} s after it", flush=True)
    check_eq(series(m, "sonde_runtime_lookups_total", result="ok"), 3.0,
             "the three lookups answered: checkout, ledger, and the dead container's (late)")
    check_eq([dict(ls) for (n, ls) in m if n == "sonde_target_info" and
              (dict(ls).get("container_id") == cid or dict(ls).get("process_pid") == str(pid))], [],
             "no sonde_target_info series for the dead container or its pid")
    check_eq(series(m, "sonde_identity_containers"), 2.0,
             "sonde_identity_containers: the two live containers only")
    check_eq(red(m, port, exe, 0, "", "", "", cid), 3, "its requests stay counted as they were")
    check_eq(a.stop(), 0, "agent exits 0")
    gate.stop.set()


class CrioStandIn:
    """CRI-O's info socket as its documentation and cri-o's own tests show
    it (plain HTTP on a unix socket): GET /info, GET /containers/<id> with
    name, pid, image, image_ref, created_time, labels, annotations,
    crio_annotations, log_path, root, sandbox, ip_addresses; 404 for an id
    it does not know. Records the paths asked."""

    def __init__(self, path, containers):
        import http.server
        import json
        import socketserver
        self.asked = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.asked.append(self.path)
                if self.path == "/info":
                    doc = {"storage_driver": "overlay", "storage_image": "", "storage_root":
                           "/var/lib/containers/storage", "cgroup_driver": "systemd",
                           "default_id_mappings": {"uids": None, "gids": None}}
                elif self.path.startswith("/containers/") and self.path[12:] in containers:
                    doc = containers[self.path[12:]]
                else:
                    body = f"can't find the container with id {self.path[12:]}\n".encode()
                    self.send_response(404)
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                body = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

            def address_string(self):
                return "unix"

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.srv = Server(path, Handler)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def crio_standin():
    """CRI-O containers named by CRI-O's info socket. CRI-O is not packaged
    in Debian 12, so a stand-in serves its documented API; the containers
    are real processes in CRI-O's systemd-driver cgroups
    (kubepods-burstable-pod<uid>.slice/crio-<id>.scope)."""
    print("== CRI-O: real CRI-O was not available here (not packaged in Debian 12); a stand-in "
          "served its documented info API (GET /containers/<id>, GET /info)", flush=True)
    pod, ns, uid = "cart-6b8d9f7c5d-h2k9x", "store", str(uuid.uuid4())
    cid, sandbox = secrets.token_hex(32), secrets.token_hex(32)
    kubelet = {"io.kubernetes.pod.name": pod, "io.kubernetes.pod.namespace": ns, "io.kubernetes.pod.uid": uid}
    port = free_port()
    srv = python_server(port)
    cg = CGROOT
    for part in ("kubepods.slice", "kubepods-burstable.slice",
                 f"kubepods-burstable-pod{uid.replace('-', '_')}.slice", f"crio-{cid}.scope"):
        cg = os.path.join(cg, part)
        if not os.path.isdir(cg):
            os.mkdir(cg)
            _made.append(cg)
    with open(os.path.join(cg, "cgroup.procs"), "w") as f:
        f.write(str(srv.pid))
    wait_until("the CRI-O container serves", lambda: curl(port) == "200")
    standin = CrioStandIn(os.path.join(T, "crio.sock"), {
        cid: {"name": f"k8s_api_{pod}_{ns}_{uid}_0", "pid": srv.pid, "image": "registry.example/cart:1.4",
              "image_ref": "sha256:" + "ab" * 32, "created_time": time.time_ns(),
              "labels": {**kubelet, "io.kubernetes.container.name": "api"},
              "annotations": {"io.kubernetes.container.hash": "5e1f2a3b", "io.kubernetes.pod.name": pod},
              "crio_annotations": {}, "log_path": f"/var/log/pods/{ns}_{pod}_{uid}/api/0.log",
              "root": f"/var/lib/containers/storage/overlay/{cid}/merged", "sandbox": sandbox,
              "ip_addresses": ["10.88.0.7"]},
        sandbox: {"name": f"k8s_POD_{pod}_{ns}_{uid}_0", "pid": 1, "image": "registry.k8s.io/pause:3.9",
                  "image_ref": "", "created_time": time.time_ns(),
                  "labels": {**kubelet, "io.kubernetes.container.name": "POD", "app.kubernetes.io/name": "cart",
                             "pod-template-hash": "6b8d9f7c5d"},
                  "annotations": {"resource.opentelemetry.io/service.name": "cart-api",
                                  "kubernetes.io/config.source": "api"},
                  "crio_annotations": {}, "log_path": "", "root": "", "sandbox": sandbox, "ip_addresses": []}})
    a = Agent("--crio-socket", standin.srv.server_address, "--containerd-socket", "none", "--podman-socket",
              "none", "--docker-socket", "none", "--metrics-pod-labels", "--no-host-metrics",
              name="agent (CRI-O stand-in)")
    wait_until("the CRI-O container looked up", lambda: (series(a.metrics(), "sonde_runtime_lookups_total",
                                                                result="ok") or 0) >= 1, timeout=20)
    for _ in range(3):
        check_eq(curl(port), "200", "request to the CRI-O container")
    ids = dict(service_name="cart-api", service_namespace=ns, k8s_namespace_name=ns, k8s_pod_name=pod,
               container_id=cid)
    m = wait_until("its requests counted", lambda: (lambda m: m if red(m, port, "cart-api", 0, ns, ns, pod, cid) == 3
                                                    else None)(a.metrics()), fatal=False) or a.metrics()
    check_eq(red(m, port, "cart-api", 0, ns, ns, pod, cid), 3,
             "CRI-O: RED series named by the pod's resource.opentelemetry.io/service.name annotation")
    check_eq(series(m, "sonde_processes", **ids), 1, "CRI-O: sonde_processes with exactly the identity labels")
    check_eq(target_info(m, srv.pid), {
        "service_name": "cart-api", "service_namespace": ns, "service_instance_id": f"{ns}.{pod}.api",
        "process_pid": str(srv.pid), "process_executable_name": os.path.basename(os.readlink(sys.executable)),
        "k8s_namespace_name": ns, "k8s_pod_name": pod, "k8s_pod_uid": uid, "k8s_container_name": "api",
        "k8s_deployment_name": "cart", "container_id": cid}, "CRI-O: sonde_target_info")
    spans = wait_until("its spans printed", lambda: (lambda s: s if len(s) >= 3 else None)(
        [s for s in a.spans() if s["kind"] == "server" and s["local_port"] == port]), fatal=False) or []
    check_eq([(s.get("container.runtime"), s.get("k8s.deployment.name"), s.get("k8s.container.name"))
              for s in spans], [("cri-o", "cart", "api")] * 3, "CRI-O: span identity")
    check_eq(series(m, "sonde_runtime_info", runtime="cri-o", socket=standin.srv.server_address), 1.0,
             "CRI-O: sonde_runtime_info 1")
    check_eq(sorted(set(standin.asked)), sorted({f"/containers/{cid}", f"/containers/{sandbox}"}),
             "CRI-O: the container and its sandbox asked, nothing else")
    check_eq(a.stop(), 0, "agent exits 0")
    standin.close()
    srv.terminate()
    srv.wait(5)


def spawn_at(pid, port, env):
    """python_server(port, env) forced onto pid (ns_last_pid; the host may
    take the pid first: a few tries), or None."""
    for _ in range(50):
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(pid - 1))
        p = python_server(port, env)
        if p.pid == pid:
            return p
        p.kill()
        p.wait()
    return None


def tgid_reuse():
    """A process exits and another takes its pid: the new one's requests
    and sonde_target_info carry the new identity."""
    print("== a tgid reused by a new process gets the new identity", flush=True)
    a = Agent("--containerd-socket", "none", "--podman-socket", "none", "--docker-socket", "none",
              "--no-host-metrics", name="agent (tgid reuse)")
    p1, p2 = free_port(), free_port()
    old = python_server(p1, {"OTEL_SERVICE_NAME": "reuse-old"})
    wait_until("the first process serves", lambda: curl(p1) == "200")
    for _ in range(2):
        curl(p1)
    m = wait_until("its requests counted", lambda: (lambda m: m if red(m, p1, "reuse-old", 0, "", "") == 3
                                                    else None)(a.metrics()), fatal=False) or a.metrics()
    check_eq((target_info(m, old.pid) or {}).get("service_name"), "reuse-old", "the first process's identity")
    pid = old.pid
    old.kill()
    old.wait()
    new = spawn_at(pid, p2, {"OTEL_SERVICE_NAME": "reuse-new"})
    if new is None:
        check(False, f"pid {pid} could not be taken again (ns_last_pid)")
        a.stop()
        return
    wait_until("the second process serves", lambda: curl(p2) == "200")
    for _ in range(3):
        curl(p2)
    m = wait_until("the second process's requests", lambda: (lambda m: m if red(m, p2, "reuse-new", 0, "", "") == 4
                                                             else None)(a.metrics()), fatal=False) or a.metrics()
    check_eq(red(m, p1, "reuse-old", 0, "", ""), 3, "first process: 3 requests as reuse-old")
    check_eq(red(m, p2, "reuse-new", 0, "", ""), 4, f"second process on the same pid {pid}: 4 requests as reuse-new")
    check_eq(red(m, p2, "reuse-old", 0, "", ""), None, "none of them under the old identity")
    check_eq((target_info(m, pid) or {}).get("service_name"), "reuse-new", "sonde_target_info of the pid")
    m = wait_until("the process gauges", lambda: (lambda m: m if series(m, "sonde_processes", service_name="reuse-old")
                                                  == 0 else None)(a.metrics()), fatal=False) or a.metrics()
    check_eq((series(m, "sonde_processes", service_name="reuse-new"),
              series(m, "sonde_processes", service_name="reuse-old")), (1.0, 0.0),
             "sonde_processes: reuse-new 1, reuse-old 0")
    new.terminate()
    new.wait(5)
    check_eq(a.stop(), 0, "agent exits 0")


CHILD = """
import os, sys, time, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=5).read()
time.sleep(float(sys.argv[2]))
os.execv(sys.argv[3], ["curl", "-s", "-o", "/dev/null", sys.argv[1]])
"""


def client_counts(m, port):
    """{service_name: requests} of the client histogram towards port."""
    out = {}
    for (n, ls), v in m.items():
        d = dict(ls)
        if n == "http_client_request_duration_seconds_count" and d.get("server_port") == str(port):
            out[d.get("service_name", "")] = out.get(d.get("service_name", ""), 0) + int(v)
    return out


def exec_renamed():
    """A process that made requests as python and then exec'd curl: curl's
    request carries curl's identity, not the one cached for the pid before
    the exec (the pid and its start time stay the same across exec)."""
    print("== a process named before its exec is named again after it", flush=True)
    a = Agent("--containerd-socket", "none", "--podman-socket", "none", "--docker-socket", "none",
              "--no-host-metrics", name="agent (exec)")
    port = free_port()
    srv = python_server(port)
    wait_until("the server", lambda: curl(port) == "200")
    url = f"http://127.0.0.1:{port}/index.html"
    # the python request's span is handled (and the pid named) during the
    # sleep, well before the exec
    child = subprocess.run([sys.executable, "-c", CHILD, url, "1.5", shutil.which("curl")],
                           timeout=30)
    check_eq(child.returncode, 0, "the child's request, then curl's, both answered")
    m = wait_until("both client spans", lambda: (lambda m: m if sum(client_counts(m, port).values()) >= 3
                                                 else None)(a.metrics()), fatal=False) or a.metrics()
    got = client_counts(m, port)
    check_eq(got, {"curl": 2, os.path.basename(os.path.realpath(sys.executable)): 1},
             "client requests by service: the test's curl and the exec'd curl as curl, the python one as python")
    srv.terminate()
    srv.wait(5)
    check_eq(a.stop(), 0, "agent exits 0")


if __name__ == "__main__":
    try:
        main()
    finally:
        cleanup_containers()
    finish("test_identity")
