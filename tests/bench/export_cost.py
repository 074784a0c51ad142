#!/usr/bin/env python3
"""What OTLP export costs the agent: nginx driven by wrk (keep-alive, -c16,
nginx on CPU 0 and wrk on CPU 1), with agent builds run in turn, ROUNDS
times, each for SECONDS under load. Per run: agent CPU per 1k requests,
spans exported per request, peak and current RSS split into anonymous and
file-backed pages (/proc/PID/smaps_rollup). Spans go to a local sink that
answers 200. A build is named BIN or BIN:MODE, MODE one of export (default:
export + --inject-port), inject (no export), agent (neither).

Usage (root): tests/bench/export_cost.py SECONDS ROUNDS BIN[:MODE]...
e.g. tests/bench/export_cost.py 5 3 /tmp/old/sonde build/sonde build/sonde:agent
Not part of `make bench` (one build there); for comparing builds."""
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

SINK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "otlp_sink.py")


def free_port():
    for _ in range(500):
        p = random.randint(20000, 29999)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
            return p
        except OSError:
            pass
        finally:
            s.close()
    sys.exit("no free port")


def ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


def metric(port, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith(name))


def kib(text, key):
    m = re.search(rf"^{key}:\s+(\d+)", text, re.M)
    return int(m.group(1)) if m else 0


def wait_ok(url, what, proc):
    for _ in range(300):
        if proc.poll() is not None:
            sys.exit(f"{what} exited during start-up")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except Exception:
            time.sleep(0.1)
    sys.exit(f"{what} not answering at {url}")


def one_run(binary, mode, secs, port, sink_port, hz):
    ap = free_port()
    env = dict(os.environ)
    args = [binary, "--listen", f"127.0.0.1:{ap}"]
    if mode == "export":
        env.update(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{sink_port}", OTEL_METRIC_EXPORT_INTERVAL="5000")
    if mode in ("export", "inject"):
        args += ["--inject-port", str(port)]
    agent = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ok(f"http://127.0.0.1:{ap}/healthz", binary, agent)
        time.sleep(0.5)
        e0 = metric(ap, "sonde_export_spans_total")
        c0 = ticks(agent.pid)
        out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c16", f"-d{secs}s", f"http://127.0.0.1:{port}/"],
                             capture_output=True, text=True, timeout=secs + 30).stdout
        c1 = ticks(agent.pid)
        time.sleep(1)	# spans in flight
        e1 = metric(ap, "sonde_export_spans_total")
        req = int(re.search(r"(\d+) requests in", out).group(1))
        status = open(f"/proc/{agent.pid}/status").read()
        roll = open(f"/proc/{agent.pid}/smaps_rollup").read()
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(timeout=20)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
    anon = kib(roll, "Anonymous")
    return (req, (c1 - c0) / hz / req * 1e6, (e1 - e0) / req, kib(status, "VmHWM") / 1024,
            kib(roll, "Rss") / 1024, anon / 1024, (kib(roll, "Rss") - anon) / 1024)


def main():
    if len(sys.argv) < 4 or os.geteuid() != 0:
        sys.exit(__doc__)
    secs, rounds, builds = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    for b in builds:
        binary, _, mode = b.partition(":")
        if not os.access(binary, os.X_OK) or mode not in ("", "export", "inject", "agent"):
            sys.exit(f"bad build {b!r}")
    for tool in ("nginx", "wrk", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found")
    hz = os.sysconf("SC_CLK_TCK")
    work = tempfile.mkdtemp(prefix="sonde-export-cost-")
    os.chmod(work, 0o755)
    os.makedirs(f"{work}/html")
    os.makedirs(f"{work}/tmp")
    with open(f"{work}/html/index.html", "w") as f:
        f.write("x" * 600)
    os.chmod(f"{work}/html", 0o755)
    os.chmod(f"{work}/html/index.html", 0o644)
    port, sink_port = free_port(), free_port()
    with open(f"{work}/nginx.conf", "w") as f:
        f.write(f"""user nobody nogroup; worker_processes 1; pid {work}/nginx.pid; error_log {work}/error.log warn;
events {{ worker_connections 1024; }}
http {{ access_log off; client_body_temp_path {work}/tmp/b; proxy_temp_path {work}/tmp/p;
  fastcgi_temp_path {work}/tmp/f; uwsgi_temp_path {work}/tmp/u; scgi_temp_path {work}/tmp/s;
  server {{ listen 127.0.0.1:{port}; root {work}/html; location / {{ index index.html; }} }} }}
""")
    nginx = subprocess.Popen(["taskset", "-c", "0", "nginx", "-c", f"{work}/nginx.conf", "-p", f"{work}/",
                              "-g", "daemon off;"])
    sink = subprocess.Popen([sys.executable, SINK, str(sink_port)])
    try:
        wait_ok(f"http://127.0.0.1:{port}/", "nginx", nginx)
        print(f"{'round':>5} {'build':<32} {'requests':>9} {'ms/1k req':>9} {'exported/req':>12} "
              f"{'VmHWM':>6} {'RSS':>6} {'anon':>6} {'file':>6}  (MiB)", flush=True)
        for r in range(rounds):
            for b in builds:
                binary, _, mode = b.partition(":")
                req, ms, exp, hwm, rss, anon, filed = one_run(binary, mode or "export", secs, port, sink_port, hz)
                print(f"{r + 1:>5} {b:<32} {req:>9} {ms:>9.2f} {exp:>12.2f} "
                      f"{hwm:>6.1f} {rss:>6.1f} {anon:>6.1f} {filed:>6.1f}", flush=True)
    finally:
        sink.terminate()
        nginx.terminate()
        sink.wait()
        nginx.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
