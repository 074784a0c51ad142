#!/usr/bin/env python3
"""Per-request cost of sonde's BPF programs and of its daemon, one build or
several side by side: nginx (CPU 0) under wrk (CPU 1), kernel.bpf_stats.

For each agent binary (and each round) it starts the agent, runs wrk for a
fixed time, and reads run_time_ns / run_cnt of the programs that agent owns
(bpftool prog show: "pids"), so other tracers on the host do not count.
Prints per program: calls per request, ns per call, ns per request; the
agent's CPU per 1k requests and events per request. --perf FILE records the
agent with perf (user and kernel stacks are not needed: flat profile).
--loop N replaces nginx + wrk with N requests of build/sockloop (one thread,
both ends of one loopback connection, injected): no scheduling between two
processes, so per-call figures vary far less between rounds and builds.

usage: bpf_cost.py [--seconds N] [--rounds N] [--conns N] [--perf PREFIX]
                   [--loop N] [--args "AGENT ARGS"] [LABEL=]BINARY...
Needs root. Bounded: every wait has a timeout; processes it starts are
stopped at exit; kernel.bpf_stats_enabled is restored."""
import argparse
import atexit
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

procs = []
restore = {}


def cleanup():
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    if "stats" in restore:
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write(restore["stats"])


atexit.register(cleanup)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return r.read()
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"bpf_cost: {url} not answering within {timeout}s")


def cpu_ns(pid):
    """CPU time of pid's threads in ns (schedstat: exact, where utime +
    stime come in clock ticks, 4% of a 5 s run's agent CPU each)."""
    ns = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                ns += int(f.read().split()[0])
        except OSError:
            pass
    return ns


def prog_stats(pid):
    """{name: (run_time_ns, run_cnt)} of the programs whose fds pid holds
    (fdinfo carries the counters; bpftool gives the names)."""
    names = {p["id"]: p.get("name", "?") for p in json.loads(subprocess.run(
        ["bpftool", "-j", "prog", "show"], capture_output=True, text=True, timeout=30,
        check=True).stdout)}
    seen = {}
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                kv = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
        except OSError:
            continue
        if "run_time_ns" in kv and "prog_id" in kv:
            seen[int(kv["prog_id"])] = (int(kv["run_time_ns"]), int(kv["run_cnt"]))
    res = {}
    for pid_, (t, c) in seen.items():
        name = names.get(pid_, str(pid_))
        t0, c0 = res.get(name, (0, 0))
        res[name] = (t0 + t, c0 + c)
    return res


def metric(text, name, filt=""):
    s = 0.0
    for line in text.splitlines():
        if (line.startswith(name + "{") or line.startswith(name + " ")) and filt in line:
            s += float(line.split()[-1])
    return s


def start_nginx(work, port):
    os.makedirs(f"{work}/html", exist_ok=True)
    os.makedirs(f"{work}/tmp", exist_ok=True)
    os.chmod(work, 0o755)
    with open(f"{work}/html/index.html", "w") as f:
        f.write("<html><body>" + "x" * 580 + "</body></html>\n")
    t = f"{work}/tmp"
    with open(f"{work}/nginx.conf", "w") as f:
        f.write(f"""user nobody nogroup;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off; sendfile on; keepalive_requests 1000;
    client_body_temp_path {t}/b; proxy_temp_path {t}/p; fastcgi_temp_path {t}/f;
    uwsgi_temp_path {t}/u; scgi_temp_path {t}/s;
    server {{ listen 127.0.0.1:{port}; root {work}/html; }}
}}
""")
    p = subprocess.Popen(["taskset", "-c", "0", "nginx", "-e", f"{work}/error.log", "-c",
                          f"{work}/nginx.conf", "-p", work + "/", "-g", "daemon off;"])
    procs.append(p)
    wait_http(f"http://127.0.0.1:{port}/")
    return p


def run(label, binary, agent_args, url, secs, conns, perf):
    lport = free_port()
    loop_port = free_port() if LOOP else 0
    if LOOP:
        agent_args = agent_args + ["--inject-port", str(loop_port)]
    log = open(f"{WORK}/{label}.log", "w")
    a = subprocess.Popen([binary, "--listen", f"127.0.0.1:{lport}"] + agent_args,
                         stdout=subprocess.DEVNULL, stderr=log)
    procs.append(a)
    wait_http(f"http://127.0.0.1:{lport}/healthz")
    if not LOOP:
        # learnt ports (wrk's) get injected only on connections made after learning
        subprocess.run(["wrk", "-t1", "-c2", "-d1s", url], capture_output=True, timeout=30)
    time.sleep(0.3)
    m0 = wait_http(f"http://127.0.0.1:{lport}/metrics").decode()
    s0, c0 = prog_stats(a.pid), cpu_ns(a.pid)
    pp = None
    if perf:
        who = ["-a"] if PERF_ALL else ["-p", str(a.pid)]
        pp = subprocess.Popen(["perf", "record", "-q", "-F", "999", "-g"] + who + ["-o",
                               f"{perf}-{label}.data"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        procs.append(pp)
    if LOOP:
        w = subprocess.run(["taskset", "-c", "1", SOCKLOOP, str(loop_port), str(LOOP)],
                           capture_output=True, text=True, timeout=600)
    else:
        w = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", f"-d{secs}s", url],
                           capture_output=True, text=True, timeout=secs + 60)
    s1, c1 = prog_stats(a.pid), cpu_ns(a.pid)
    if pp:
        pp.send_signal(signal.SIGINT)
        pp.wait(30)
    time.sleep(1)
    m1 = wait_http(f"http://127.0.0.1:{lport}/metrics").decode()
    a.terminate()
    a.wait(15)
    if LOOP:
        m = re.search(r"sockloop: (\d+) requests in ([\d.]+) s", w.stdout)
        if w.returncode or not m:
            sys.exit("bpf_cost: sockloop failed:\n" + w.stdout + w.stderr)
        req, rps = int(m.group(1)), int(m.group(1)) / float(m.group(2))
    else:
        m = re.search(r"(\d+) requests in", w.stdout)
        rps = re.search(r"Requests/sec:\s+([\d.]+)", w.stdout)
        if not m or not rps:
            sys.exit("bpf_cost: cannot parse wrk output:\n" + w.stdout + w.stderr)
        req, rps = int(m.group(1)), float(rps.group(1))
    progs = {}
    for name, (t1, n1) in s1.items():
        t0, n0 = s0.get(name, (0, 0))
        if n1 - n0:
            progs[name] = (t1 - t0, n1 - n0)
    d = lambda n, f="": metric(m1, n, f) - metric(m0, n, f)
    return {
        "req": req, "rps": rps, "progs": progs,
        "cpu_ms_1k": (c1 - c0) / 1e3 / req,
        "events_req": d("sonde_ringbuf_events_total", 'ring="events"') / req,
        "spans_req": d("http_server_request_duration_seconds_count",
                       f'service_name="{"sockloop" if LOOP else "nginx"}"') / req,
        "inj_req": d("sonde_injected_total") / req,
        "meta_missing": metric(m1, "sonde_connections_meta_missing_total"),
    }


def report(label, r):
    print(f"== {label}: {r['req']} requests, {r['rps']:.0f} req/s, agent CPU {r['cpu_ms_1k']:.2f} ms/1k req, "
          f"events/req {r['events_req']:.2f}, {'sockloop' if LOOP else 'nginx'} spans/req {r['spans_req']:.3f}, injected/req {r['inj_req']:.2f}, "
          f"connections named late {r['meta_missing']:.0f}")
    if LOOP and abs(r["spans_req"] - 1) > 0.001:
        # every request of the loop is one server span: anything else means
        # the daemon lost track of the stream, and the figures are not comparable
        print(f"   WARNING: {r['spans_req']:.3f} server spans per request, not 1")
    tot = 0
    print(f"   {'program':<24} {'calls/req':>9} {'ns/call':>8} {'ns/req':>8}")
    for name, (t, n) in sorted(r["progs"].items(), key=lambda kv: -kv[1][0]):
        tot += t
        print(f"   {name:<24} {n / r['req']:9.2f} {t / n:8.0f} {t / r['req']:8.0f}")
    print(f"   {'total':<24} {'':9} {'':8} {tot / r['req']:8.0f}")
    inj = r["progs"].get("sonde_sk_msg", (0, 1))[0]
    return tot / r["req"], (tot - inj) / r["req"]


ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--seconds", type=int, default=8)
ap.add_argument("--rounds", type=int, default=1)
ap.add_argument("--conns", type=int, default=16)
ap.add_argument("--args", default="", help="extra agent arguments")
ap.add_argument("--perf", default="", help="perf record output prefix")
ap.add_argument("--perf-all", action="store_true", help="perf records every CPU, not the agent")
ap.add_argument("--loop", type=int, default=0, metavar="N",
                help="instead of nginx + wrk: N requests of build/sockloop, one thread playing "
                     "both ends of one connection (4 socket calls per request; steadier per call)")
ap.add_argument("binaries", nargs="+")
o = ap.parse_args()
PERF_ALL = o.perf_all
LOOP = o.loop
SOCKLOOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "sockloop")
if LOOP and not os.access(SOCKLOOP, os.X_OK):
    sys.exit(f"bpf_cost: {SOCKLOOP} missing (make build/sockloop)")
if os.geteuid() != 0:
    sys.exit("bpf_cost: must run as root")
for t in ("nginx", "wrk", "bpftool", "taskset"):
    if not shutil.which(t):
        sys.exit(f"bpf_cost: {t} not found")
WORK = tempfile.mkdtemp(prefix="sonde-bpfcost.")
with open("/proc/sys/kernel/bpf_stats_enabled") as f:
    restore["stats"] = f.read().strip()
with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
    f.write("1")
port = free_port()
url = f"http://127.0.0.1:{port}/"
if not LOOP:
    start_nginx(WORK, port)
    subprocess.run(["wrk", "-t1", "-c4", "-d1s", url], capture_output=True, timeout=30)
totals = {}
for rnd in range(o.rounds):
    for b in o.binaries:
        label, _, path = b.rpartition("=")
        label = label or os.path.basename(os.path.dirname(os.path.abspath(path))) or path
        r = run(f"{label}-r{rnd + 1}", path, shlex.split(o.args), url, o.seconds, o.conns, o.perf)
        bpf, bpf_noinj = report(f"{label} round {rnd + 1}", r)
        totals.setdefault(label, []).append((bpf, r["cpu_ms_1k"], r["rps"], bpf_noinj))
print("== summary (per round: BPF ns/req, agent CPU ms/1k req, req/s)")
for label, v in totals.items():
    print(f"   {label:<12} " + "  ".join(f"{a:6.0f} ns {b:5.2f} ms {c:7.0f}" for a, b, c, _ in v))
# Issue #14's per-request goals (bpf_stats adds ~40 ns per program call, so
# the BPF figures are upper bounds). Medians over the rounds.
print("== goals (median over rounds)")
for label, v in totals.items():
    med = lambda xs: sorted(xs)[len(xs) // 2]
    bpf, daemon, noinj = med([a for a, *_ in v]), med([b for _, b, *_ in v]), med([d for *_, d in v])
    print(f"   {label:<12} BPF, all programs, per request <= 1.5 us     {bpf / 1000:6.2f} us  "
          f"{'PASS' if bpf <= 1500 else 'MISS'}")
    print(f"   {label:<12} BPF without sk_msg injection <= 1.5 us      {noinj / 1000:6.2f} us  "
          f"{'PASS' if noinj <= 1500 else 'MISS'}")
    print(f"   {label:<12} daemon CPU per request <= 1 us               {daemon:6.2f} us  "
          f"{'PASS' if daemon <= 1.0 else 'MISS'}")
shutil.rmtree(WORK, ignore_errors=True)
