#!/usr/bin/env python3
"""Per-service TCP health, run-queue latency and /proc process metrics of
the real agent, against real Python processes on 127.0.0.1.

Each role runs under its own copy of the Python interpreter (sonde names a
service after the executable's basename), so the counts of the server, the
client and the other processes never mix. Exact values where the kernel's
behaviour makes them known:
  - N normal connections + K reset by the server: N+K opened (outbound) for
    the client, N+K accepted (inbound) for the server;
  - M connects to a closed port: M failures with reason="refused" (and M
    resets received by the client: a refused connect is a reset in SYN_SENT);
  - the server closes K connections with SO_LINGER 0: K resets sent by the
    server, K (+ M) received by the client;
  - every established connection that closes gives one smoothed-RTT sample;
  - H connections held open: sonde_tcp_open_connections = H on both sides,
    then 0 after they close;
  - a listener with backlog 1 that does not accept: listen drops > 0 once it
    accepts again;
  - a process with T threads and F fds: process_threads = T,
    process_open_file_descriptors = F;
  - a CPU-bound process: run-queue latency count > 0 and growing.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Agent, check, check_eq, finish, free_port, parse_metrics, series,  # noqa: E402
                     socket_tier_expected, spawn, wait_until)

N_OK, K_RST, M_REFUSED, H_HELD = 5, 2, 3, 2
N_THREADS, N_EXTRA_FDS = 5, 10

SERVER = r"""
import socket, struct, sys, threading
port, total = int(sys.argv[1]), int(sys.argv[2])
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(64)
print("ready", flush=True)
def serve(c):
    kind = c.recv(1)
    if kind == b"r":      # abortive close: RST instead of FIN
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
        return
    while c.recv(4096):   # 'n' and 'h': wait for the client's FIN
        pass
    c.close()
ts = []
for _ in range(total):
    c, _ = ls.accept()
    ts.append(threading.Thread(target=serve, args=(c,)))
    ts[-1].start()
for t in ts:
    t.join()
print("done", flush=True)
sys.stdin.read()
"""

CLIENT = r"""
import socket, sys
port, closed, n_ok, k_rst, m_ref, held = map(int, sys.argv[1:7])
for _ in range(n_ok):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"n")
    s.shutdown(socket.SHUT_WR)
    while s.recv(4096):
        pass
    s.close()
for _ in range(k_rst):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"r")
    try:
        while s.recv(4096):
            pass
    except ConnectionResetError:
        pass
    s.close()
refused = 0
for _ in range(m_ref):
    try:
        socket.create_connection(("127.0.0.1", closed)).close()
    except ConnectionRefusedError:
        refused += 1
hold = [socket.create_connection(("127.0.0.1", port)) for _ in range(held)]
for s in hold:
    s.sendall(b"h")
print("holding", refused, flush=True)
sys.stdin.readline()
for s in hold:
    s.shutdown(socket.SHUT_WR)
    while s.recv(4096):
        pass
    s.close()
print("released", flush=True)
sys.stdin.read()
"""

# A listener with backlog 1 that accepts only when told to: connections
# beyond the accept queue are dropped by the kernel (ListenDrops).
BACKLOG = r"""
import socket, sys
port = int(sys.argv[1])
ls = socket.socket()
ls.bind(("127.0.0.1", port))
ls.listen(1)
print("ready", flush=True)
sys.stdin.readline()
ls.settimeout(5)
c, _ = ls.accept()
print("accepted", flush=True)
sys.stdin.read()
"""

THREADS = r"""
import os, sys, threading
n_threads, n_fds = int(sys.argv[1]), int(sys.argv[2])
ev = threading.Event()
for _ in range(n_threads - 1):
    threading.Thread(target=ev.wait, daemon=True).start()
fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(n_fds)]
print("ready", flush=True)
sys.stdin.read()
"""

BUSY = r"""
import threading, sys
def spin():
    x = 0
    while True:
        x += 1
for _ in range(3):   # more runnable threads than the 2 CPUs: preemption
    threading.Thread(target=spin, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""


def runner(tmp, name, code, *args):
    """Python under its own executable name (= its own service_name)."""
    exe = os.path.join(tmp, name)
    if not os.path.exists(exe):
        shutil.copy2(os.path.realpath(sys.executable), exe)
    p = spawn([exe, "-c", code, *map(str, args)], stdin=subprocess.PIPE,
              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return p


def schedstat(pid):
    """Run-queue wait (ns) and timeslices summed over a process's threads."""
    wait = slices = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                fields = f.read().split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        wait += int(fields[1])
        slices += int(fields[2])
    return wait, slices


def expect_line(p, want, what):
    line = p.stdout.readline().strip()
    if not line.startswith(want):
        err = p.stderr.read() if p.poll() is not None else ""
        raise SystemExit(f"FAIL: {what}: expected {want!r}, got {line!r} {err}")
    return line


def val(m, name, **labels):
    return series(m, name, **labels) or 0.0


def buckets(m, name, svc):
    out = []
    for (n, labels), v in m.items():
        d = dict(labels)
        if n == name + "_bucket" and d.get("service_name") == svc:
            le = float("inf") if d["le"] == "+Inf" else float(d["le"])
            out.append((le, v))
    return [v for _, v in sorted(out)]


def main():
    tmp = tempfile.mkdtemp(prefix="sonde-tcp-health-")
    os.chmod(tmp, 0o755)
    srv_name, cli_name = "sonde-t-server", "sonde-t-client"
    agent = Agent(print_spans=False)

    # ---- TCP lifecycle ----
    print("tcp: connects, refused connects, server resets, held connections", flush=True)
    port, closed = free_port(), free_port()
    srv = runner(tmp, srv_name, SERVER, port, N_OK + K_RST + H_HELD)
    expect_line(srv, "ready", "server start")
    cli = runner(tmp, cli_name, CLIENT, port, closed, N_OK, K_RST, M_REFUSED, H_HELD)
    line = expect_line(cli, "holding", "client connects")
    check_eq(int(line.split()[1]), M_REFUSED, "client saw ECONNREFUSED for each refused connect")

    def opened_both():
        m = agent.metrics()
        ok = (val(m, "sonde_tcp_connections_opened_total", service_name=cli_name, direction="outbound")
              >= N_OK + K_RST + H_HELD and
              val(m, "sonde_tcp_connections_opened_total", service_name=srv_name, direction="inbound")
              >= N_OK + K_RST + H_HELD and
              val(m, "sonde_tcp_srtt_seconds_count", service_name=cli_name) >= N_OK + K_RST and
              val(m, "sonde_tcp_srtt_seconds_count", service_name=srv_name) >= N_OK + K_RST)
        return m if ok else None

    m = wait_until("connections counted", opened_both, timeout=10, fatal=False) or agent.metrics()
    n_open = N_OK + K_RST + H_HELD
    check_eq(val(m, "sonde_tcp_connections_opened_total", service_name=cli_name, direction="outbound"),
             n_open, "client connections opened (connect reached ESTABLISHED)")
    check_eq(val(m, "sonde_tcp_connections_opened_total", service_name=cli_name, direction="inbound"),
             0, "client accepted nothing")
    check_eq(val(m, "sonde_tcp_connections_opened_total", service_name=srv_name, direction="inbound"),
             n_open, "server connections accepted")
    check_eq(val(m, "sonde_tcp_connections_opened_total", service_name=srv_name, direction="outbound"),
             0, "server connected nowhere")
    check_eq(val(m, "sonde_tcp_connect_duration_seconds_count", service_name=cli_name), n_open,
             "connect duration samples = successful connects")
    check(0 < val(m, "sonde_tcp_connect_duration_seconds_sum", service_name=cli_name) < 1,
          "loopback connect durations sum to under a second")
    check_eq(val(m, "sonde_tcp_connect_failures_total", service_name=cli_name, reason="refused"),
             M_REFUSED, "refused connects")
    for reason in ("timeout", "unreachable", "aborted", "other"):
        check_eq(series(m, "sonde_tcp_connect_failures_total", service_name=cli_name, reason=reason),
                 None, f"no {reason} connect failures")
    check_eq(val(m, "sonde_tcp_resets_total", service_name=srv_name, direction="sent"), K_RST,
             "server resets sent (SO_LINGER 0 close)")
    check_eq(val(m, "sonde_tcp_resets_total", service_name=cli_name, direction="received"),
             K_RST + M_REFUSED, "client resets received (server aborts + refused SYNs)")
    check_eq(val(m, "sonde_tcp_resets_total", service_name=cli_name, direction="sent"), 0,
             "client sent no reset")
    check(val(m, "sonde_tcp_resets_total", service_name="unknown", direction="sent") >= M_REFUSED,
          "resets answering SYNs to a closed port count under service_name=unknown")
    check_eq(val(m, "sonde_tcp_srtt_seconds_count", service_name=cli_name), N_OK + K_RST,
             "client srtt samples = its closed connections")
    check_eq(val(m, "sonde_tcp_srtt_seconds_count", service_name=srv_name), N_OK + K_RST,
             "server srtt samples = its closed connections")
    check(0 < val(m, "sonde_tcp_srtt_seconds_sum", service_name=cli_name) < 0.1 * (N_OK + K_RST),
          "loopback srtt under 100 ms each")
    check_eq(val(m, "sonde_tcp_open_connections", service_name=cli_name), H_HELD,
             "client open connections while held")
    check_eq(val(m, "sonde_tcp_open_connections", service_name=srv_name), H_HELD,
             "server open connections while held")
    check_eq(val(m, "sonde_tcp_retransmits_total", service_name=cli_name), 0,
             "no retransmissions on loopback")
    b = buckets(m, "sonde_tcp_srtt_seconds", cli_name)
    check(b == sorted(b) and b and b[-1] == N_OK + K_RST, f"srtt buckets cumulative: {b}")

    cli.stdin.write("\n")
    cli.stdin.flush()
    expect_line(cli, "released", "client release")
    expect_line(srv, "done", "server done")

    def all_closed():
        m = agent.metrics()
        return m if (val(m, "sonde_tcp_srtt_seconds_count", service_name=srv_name) >= n_open and
                     val(m, "sonde_tcp_srtt_seconds_count", service_name=cli_name) >= n_open) else None

    m = wait_until("held connections closed", all_closed, timeout=10, fatal=False) or agent.metrics()
    check_eq(val(m, "sonde_tcp_open_connections", service_name=cli_name), 0,
             "client open connections after close")
    check_eq(val(m, "sonde_tcp_open_connections", service_name=srv_name), 0,
             "server open connections after close")
    check_eq(val(m, "sonde_tcp_srtt_seconds_count", service_name=cli_name), n_open,
             "client srtt samples after all closed")
    check_eq(val(m, "sonde_tcp_srtt_seconds_count", service_name=srv_name), n_open,
             "server srtt samples after all closed")
    check_eq(val(m, "sonde_tcp_connections_opened_total", service_name=cli_name, direction="outbound"),
             n_open, "client connections opened, unchanged")

    # ---- listen queue overflow ----
    print("tcp: listen drops", flush=True)
    bl_name = "sonde-t-backlog"
    bport = free_port()
    bl = runner(tmp, bl_name, BACKLOG, bport)
    expect_line(bl, "ready", "backlog server start")
    conns = []
    import socket
    for _ in range(6):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", bport))
        except BlockingIOError:
            pass
        conns.append(s)
    time.sleep(0.3)
    bl.stdin.write("\n")
    bl.stdin.flush()
    expect_line(bl, "accepted", "backlog server accept")
    m = wait_until("listen drops", lambda: (lambda m: m if val(
        m, "sonde_tcp_listen_drops_total", service_name=bl_name) > 0 else None)(agent.metrics()),
        timeout=5, fatal=False) or agent.metrics()
    check(val(m, "sonde_tcp_listen_drops_total", service_name=bl_name) > 0,
          "listen drops of a full accept queue, seen at accept")
    for s in conns:
        s.close()

    # ---- /proc process metrics ----
    print("process: threads, fds, memory, cpu", flush=True)
    th_name = "sonde-t-threads"
    th = runner(tmp, th_name, THREADS, N_THREADS, N_EXTRA_FDS)
    expect_line(th, "ready", "threads process start")
    want_fds = len(os.listdir(f"/proc/{th.pid}/fd"))
    m = agent.metrics()
    check_eq(val(m, "process_threads", service_name=th_name), N_THREADS, "process_threads")
    check_eq(val(m, "process_open_file_descriptors", service_name=th_name), want_fds,
             "process_open_file_descriptors")
    check(want_fds >= 3 + N_EXTRA_FDS, f"the process holds its {N_EXTRA_FDS} extra fds ({want_fds})")
    check_eq(val(m, "sonde_processes", service_name=th_name), 1, "one process of the service")
    with open(f"/proc/{th.pid}/statm") as f:
        rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    got = val(m, "process_memory_usage_bytes", service_name=th_name)
    check(abs(got - rss) <= 0.1 * rss, f"process_memory_usage_bytes {got} ~ statm {rss}")
    ratio = val(m, "sonde_process_open_file_descriptor_utilization_ratio", service_name=th_name)
    check(0 < ratio < 1, f"fd utilization ratio in (0,1): {ratio}")
    th.kill()
    th.wait()
    m = agent.metrics()
    check_eq(val(m, "process_threads", service_name=th_name), 0, "threads gauge 0 once it exits")

    # ---- run-queue wait (default: the kernel's sched_info, task iterator) ----
    print("sched: run-queue wait of a CPU-bound process (3 spinning threads, 2 CPUs)", flush=True)
    busy_name = "sonde-t-busy"
    busy = runner(tmp, busy_name, BUSY)
    expect_line(busy, "ready", "busy process start")
    time.sleep(1.5)
    w0, s0 = schedstat(busy.pid)
    m1 = agent.metrics()
    w1, s1 = schedstat(busy.pid)
    got_w = val(m1, "sonde_runqueue_wait_seconds_total", service_name=busy_name)
    got_s = val(m1, "sonde_runqueue_timeslices_total", service_name=busy_name)
    check(w0 > 0, f"the busy process waited on a run queue ({w0} ns in its schedstat)")
    # the agent read every thread between the test's two reads
    check(w0 / 1e9 - 1e-6 <= got_w <= w1 / 1e9 + 1e-6,
          f"sonde_runqueue_wait_seconds_total {got_w} within the threads' schedstat "
          f"{w0 / 1e9:.9f}..{w1 / 1e9:.9f}")
    check(s0 <= got_s <= s1, f"sonde_runqueue_timeslices_total {got_s} within {s0}..{s1}")
    cpu1 = val(m1, "process_cpu_time_seconds_total", service_name=busy_name, cpu_mode="user")
    check(cpu1 > 0.5, f"busy process CPU time counted: {cpu1}")
    time.sleep(1)
    m2 = agent.metrics()
    check(val(m2, "sonde_runqueue_wait_seconds_total", service_name=busy_name) > got_w,
          "run-queue wait grows")
    check(val(m2, "process_cpu_time_seconds_total", service_name=busy_name, cpu_mode="user") > cpu1,
          "CPU time grows")
    busy.kill()
    busy.wait()
    m3 = agent.metrics()
    check(val(m3, "process_cpu_time_seconds_total", service_name=busy_name, cpu_mode="user") >=
          val(m2, "process_cpu_time_seconds_total", service_name=busy_name, cpu_mode="user"),
          "CPU time counter does not drop when the process exits")
    check_eq(val(m3, "sonde_runqueue_wait_seconds_total", service_name=busy_name),
             val(m2, "sonde_runqueue_wait_seconds_total", service_name=busy_name),
             "run-queue wait counter kept, not dropped, when the process exits")
    check_eq([lab for (n, lab) in m3 if n == "sonde_runqueue_latency_seconds_count"], [],
             "no run-queue histogram without --runqueue-histogram")

    # ---- probes ----
    text = agent.metrics_text()
    m = parse_metrics(text)
    # The socket capture tier has an inet_sock_set_state hook of its own (so
    # tcpstate's gets its object's name) and sees accepts as passive opens,
    # without the accept syscall tracepoints.
    if socket_tier_expected():
        tier_hooks = ("tcpstate:inet_sock_set_state",)
        check_eq([h for (n, lab) in m if n == "sonde_probe_info"
                  for k, h in lab if k == "hook" and "sys_exit_accept" in h], [],
                 "socket tier: no accept syscall tracepoint")
    else:
        tier_hooks = ("inet_sock_set_state", "tcpstate:sys_exit_accept", "tcpstate:sys_exit_accept4")
    for hook in (*tier_hooks, "tcp_retransmit_skb", "tcp_send_reset", "tcp_receive_reset"):
        check_eq(series(m, "sonde_probe_info", hook=hook, mode="tracepoint"), 1.0,
                 f"sonde_probe_info {hook} tracepoint")
    check_eq(series(m, "sonde_probe_info", hook="iter/task", mode="iterator"), 1.0,
             "sonde_probe_info iter/task iterator")
    check_eq([h for (n, lab) in m if n == "sonde_probe_info" for k, h in lab
              if k == "hook" and h in ("sched_wakeup", "sched_wakeup_new", "sched_switch")], [],
             "no scheduler hook by default")
    if shutil.which("promtool"):
        prefixes = ("sonde_tcp_", "sonde_runqueue_", "process_cpu_time", "process_memory_usage",
                    "process_threads", "process_open_file", "sonde_processes",
                    "sonde_process_open_file")

        def family(line):
            return line.split()[2] if line.startswith("#") else line.split("{")[0].split(" ")[0]
        ours = [l for l in text.splitlines() if l and family(l).startswith(prefixes)]
        r = subprocess.run(["promtool", "check", "metrics"], input="\n".join(ours) + "\n",
                           capture_output=True, text=True)
        check_eq(r.returncode, 0, f"promtool on the new families: {r.stdout}{r.stderr}")
    check_eq(agent.stop(), 0, "agent exit status")
    errors = [r for r in agent.log_records() if r.get("@level") == "error"]
    check_eq(errors, [], "no error log lines")

    # ---- run-queue latency histogram (--runqueue-histogram) ----
    print("sched: --runqueue-histogram, the scheduler hooks' histogram", flush=True)
    agent = Agent("--runqueue-histogram", print_spans=False)
    busy = runner(tmp, busy_name, BUSY)
    expect_line(busy, "ready", "busy process start")
    time.sleep(1.5)
    m1 = agent.metrics()
    c1 = val(m1, "sonde_runqueue_latency_seconds_count", service_name=busy_name)
    check(c1 > 0, f"run-queue latency samples for a busy process: {c1}")
    b1 = buckets(m1, "sonde_runqueue_latency_seconds", busy_name)
    check(b1 == sorted(b1) and b1 and b1[-1] == c1, "run-queue buckets cumulative, +Inf = count")
    check(val(m1, "sonde_runqueue_wait_seconds_total", service_name=busy_name) > 0,
          "the run-queue wait counter too")
    time.sleep(1)
    m2 = agent.metrics()
    c2 = val(m2, "sonde_runqueue_latency_seconds_count", service_name=busy_name)
    check(c2 > c1, f"run-queue latency count grows ({c1} -> {c2})")
    busy.kill()
    busy.wait()
    for hook in ("sched_wakeup", "sched_wakeup_new", "sched_switch"):
        check_eq(series(m2, "sonde_probe_info", hook=hook, mode="tracepoint"), 1.0,
                 f"--runqueue-histogram: sonde_probe_info {hook} tracepoint")
    check_eq(agent.stop(), 0, "agent exit status")
    errors = [r for r in agent.log_records() if r.get("@level") == "error"]
    check_eq(errors, [], "no error log lines")

    for p in (srv, cli, bl):
        p.kill()
    shutil.rmtree(tmp, ignore_errors=True)
    finish("test_tcp_health")


if __name__ == "__main__":
    main()
