"""Integration: the real agent's start warnings and its stop time.

  1. --pid of no process: a JSON warning naming the pid, and the agent runs;
  2. SIGTERM when idle: the time to exit, split into the kernel's detaching
     of the probes (logged as "probes detached", detach_ms) and the rest;
  3. SIGTERM with an OTLP receiver that accepts and never answers: the flush
     ends at its 2 s bound (the request in flight is cut, not left to its
     10 s timeout) and runs beside the detaching, not after it.
The measured times are printed."""
import json
import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Agent, check, check_eq, finish  # noqa: E402

# What the agent's own shutdown may add to the kernel's detach time, idle.
OWN_IDLE_S = 1.0
# The whole idle stop where every link detaches without the kernel's mutex.
IDLE_STOP_S = 1.0
FLUSH_BOUND_MS = 2000


def absent_pid():
    with open("/proc/sys/kernel/pid_max") as f:
        pid = int(f.read()) - 1
    while os.path.exists(f"/proc/{pid}"):
        pid -= 1
    return pid


def stop_timed(agent):
    """SIGTERM; (exit status, seconds to exit, log records)."""
    t0 = time.monotonic()
    agent.proc.send_signal(signal.SIGTERM)
    rc = agent.proc.wait(30)
    return rc, time.monotonic() - t0, agent.log_records()


def field(recs, message, key):
    vals = [r[key] for r in recs if r.get("@message") == message and key in r]
    return vals[-1] if vals else None


class Blackhole:
    """Accepts connections and never reads or answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(c)


def main():
    if os.geteuid() != 0:
        raise SystemExit("FAIL: the integration tests load BPF programs and must run as root")

    print("== 1: --pid of no process", flush=True)
    pid = absent_pid()
    agent = Agent("--pid", str(pid), print_spans=False, name="agent --pid (absent)")
    warns = [r for r in agent.log_records() if r.get("@level") == "warn" and "--pid" in r["@message"]]
    check_eq([(r["@message"], r.get("pid")) for r in warns],
             [("--pid: no such process now; tracing whichever process gets this pid", pid)],
             "one warning naming the absent pid")
    check_eq(agent.proc.poll(), None, "the agent runs on")
    check_eq(agent.stop(), 0, "agent --pid exits cleanly")

    print("== 2: SIGTERM when idle", flush=True)
    agent = Agent(print_spans=False, name="idle agent")
    time.sleep(1.0)
    tier = next((dict(labels)["mode"] for (n, labels), v in agent.metrics().items()
                 if n == "sonde_probe_info" and dict(labels).get("hook") == "payload_capture"
                 and v == 1), "")
    rc, took, recs = stop_timed(agent)
    detach = (field(recs, "probes detached", "detach_ms") or 0) / 1000
    print(f"   idle stop: {took:.3f} s in all, {detach:.3f} s of it the kernel detaching the probes, "
          f"{took - detach:.3f} s the rest", flush=True)
    check_eq(rc, 0, "idle agent exits 0")
    check(field(recs, "probes detached", "detach_ms") is not None, "detach time logged")
    check(took - detach <= OWN_IDLE_S, f"idle: the agent's own shutdown took {took - detach:.3f} s "
          f"(<= {OWN_IDLE_S} s besides detaching)")
    # Perf-event links (syscall tracepoints, uprobes before Linux 6.6) detach
    # one at a time, ~0.1 s each; socket-tier hooks and uprobe_multi links
    # do not, and then the whole stop is held to the 1 s.
    links = field(recs, "uprobe links", "kind")
    if tier == "socket" and links == "uprobe_multi":
        check(took <= IDLE_STOP_S, f"idle: stopped within {IDLE_STOP_S} s ({took:.3f} s; socket "
              f"capture tier, uprobe_multi links)")
    else:
        print(f"   note: the {IDLE_STOP_S} s idle stop is not checked on this kernel: capture tier "
              f"{tier or '?'}, uprobe links {links or '?'} (perf-event links detach one at a time)",
              flush=True)

    print("== 3: SIGTERM with an OTLP receiver that never answers", flush=True)
    hole = Blackhole()
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{hole.port}",
           "OTEL_METRIC_EXPORT_INTERVAL": "500", "OTEL_BSP_SCHEDULE_DELAY": "200"}
    os.environ.update(env)
    try:
        agent = Agent(print_spans=False, name="agent with a silent receiver")
    finally:
        for k in env:
            os.environ.pop(k)
    time.sleep(1.5)  # a metrics request is waiting for its answer by now
    check(len(hole.held) >= 1, f"the receiver holds a connection ({len(hole.held)})")
    rc, took, recs = stop_timed(agent)
    detach = (field(recs, "probes detached", "detach_ms") or 0) / 1000
    flush_ms = field(recs, "OTLP exporter stopped", "flush_ms")
    print(f"   stop with a silent receiver: {took:.3f} s in all; OTLP flush {flush_ms} ms, "
          f"detaching {detach:.3f} s, side by side", flush=True)
    check_eq(rc, 0, "agent exits 0")
    check(flush_ms is not None and FLUSH_BOUND_MS <= flush_ms <= FLUSH_BOUND_MS + 100,
          f"flush ended at its {FLUSH_BOUND_MS} ms bound ({flush_ms} ms), not at the 10 s request timeout")
    check(took <= max(detach, (flush_ms or 0) / 1000) + OWN_IDLE_S,
          f"flush and detach overlap: {took:.3f} s <= max({detach:.3f}, {(flush_ms or 0) / 1000:.3f}) "
          f"+ {OWN_IDLE_S}")
    finish("test_lifecycle")


if __name__ == "__main__":
    main()
