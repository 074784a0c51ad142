"""Integration: one sonde agent per host (/run/sonde/agent.lock), against
the real agent only.

Starts two agents itself, so run it holding the test lock:
    flock /tmp/sonde-agent.lock python3 tests/integration/test_one_agent.py

  1. agent 1 runs and holds the lock (its pid in the file);
  2. agent 2 on another --listen port exits 1 within 10 s, naming agent 1's pid;
  3. agent 2 with --allow-second-agent on agent 1's --listen address exits 1:
     "address in use" (no SO_REUSEPORT scrape splitting);
  4. agent 2 with --allow-second-agent on a free port runs, logs that
     injection is off, and sonde_probe_info reports sockops/sk_msg unavailable;
  5. after kill -9 of agent 1, a new agent starts without the flag and injects;
  6. at the end no process holds the lock."""
import fcntl
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SONDE, Agent, check, check_eq, finish, free_port, series,  # noqa: E402
                     wait_until)

LOCK = "/run/sonde/agent.lock"
BOUND_S = 10.0  # a refused agent must be gone within this


def lock_free():
    """True when nobody holds the host lock (tested with a lock of our own)."""
    if not os.path.exists(LOCK):
        return True
    with open(LOCK, "r+") as f:
        try:
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        fcntl.lockf(f, fcntl.LOCK_UN)
        return True


def run_second(*args):
    """A second agent that is expected to refuse: (exit status, seconds, log records)."""
    t0 = time.monotonic()
    try:
        r = subprocess.run([SONDE, *args], capture_output=True, text=True, timeout=BOUND_S)
    except subprocess.TimeoutExpired as e:
        return "timeout", time.monotonic() - t0, (e.stderr or b"").decode(errors="replace")
    return r.returncode, time.monotonic() - t0, r.stderr


def records(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def main():
    if os.geteuid() != 0:
        raise SystemExit("FAIL: the integration tests load BPF programs and must run as root")
    if not lock_free():
        raise SystemExit(f"FAIL: {LOCK} is held before the test: another sonde agent runs here")

    print("== 1: agent 1 holds the host lock", flush=True)
    a1 = Agent(print_spans=False, name="agent 1")
    with open(LOCK) as f:
        check_eq(f.read().strip(), str(a1.proc.pid), "lock file holds agent 1's pid")
    check(not lock_free(), "lock held while agent 1 runs")
    m1 = a1.metrics()
    check_eq(series(m1, "sonde_probe_info", hook="sockops", mode="cgroup"), 1.0, "agent 1 injects (sockops)")

    print("== 2: agent 2 on another port refuses to start", flush=True)
    rc, took, err = run_second("--listen", f"127.0.0.1:{free_port()}")
    print(f"   agent 2 exited {rc} after {took:.2f} s", flush=True)
    check_eq(rc, 1, "agent 2 exits 1")
    check(took < BOUND_S, f"agent 2 gone within {BOUND_S} s ({took:.2f} s)")
    errs = [r for r in records(err) if r.get("@level") == "error"]
    check_eq([r.get("pid") for r in errs], [a1.proc.pid], "one error record, naming agent 1's pid")
    check(f"pid {a1.proc.pid}" in err and "another sonde agent is running" in err,
          f"message names agent 1's pid: {errs}")
    check("sonde running" not in err and "serving /metrics" not in err, "agent 2 attached and served nothing")

    print("== 3: --allow-second-agent on agent 1's --listen address: address in use", flush=True)
    rc, took, err = run_second("--listen", f"127.0.0.1:{a1.port}", "--allow-second-agent")
    print(f"   agent 2 exited {rc} after {took:.2f} s", flush=True)
    check_eq(rc, 1, "same address: exits 1")
    check(any("address in use" in r["@message"] and r.get("error") == "Address already in use"
              for r in records(err) if r.get("@level") == "error"), f"same address: 'address in use' logged: {err[-600:]}")
    check("sonde running" not in err, "same address: nothing attached")
    check_eq(a1.proc.poll(), None, "agent 1 still running")
    check_eq(sum(1 for _ in range(5) if a1.metrics()), 5, "agent 1 answers every scrape")

    print("== 4: --allow-second-agent on a free port: runs without injection", flush=True)
    a2 = Agent("--allow-second-agent", print_spans=False, name="agent 2 (allowed)")
    warns = [r for r in a2.log_records() if "another sonde agent" in r["@message"]]
    check_eq([(r["@level"], r.get("pid")) for r in warns], [("warn", a1.proc.pid)],
             "agent 2 logs the other agent once, as a warning with its pid")
    check(warns and "injection off" in warns[0]["@message"], f"agent 2 says injection is off: {warns}")
    check(not any(r["@message"] == "traceparent injection attached" for r in a2.log_records()),
          "agent 2 attached no injection")
    m2 = a2.metrics()
    for hook in ("sockops", "sk_msg"):
        check_eq(series(m2, "sonde_probe_info", hook=hook, mode="unavailable"), 0.0,
                 f"agent 2: sonde_probe_info{{hook={hook},mode=unavailable}} 0")
    check_eq(series(m2, "sonde_probe_info", hook="sockops", mode="cgroup"), None, "agent 2: no sockops cgroup")
    with open(LOCK) as f:
        check_eq(f.read().strip(), str(a1.proc.pid), "lock file still names agent 1")
    check_eq(a2.stop(), 0, "agent 2 exits cleanly")
    check(not lock_free(), "agent 2 leaving does not free agent 1's lock")

    print("== 5: kill -9 agent 1, then a new agent starts", flush=True)
    a1.proc.send_signal(signal.SIGKILL)
    a1.proc.wait(10)
    wait_until("lock released by the kernel", lock_free, timeout=5)
    a3 = Agent(print_spans=False, name="agent 3")
    check(not any("another sonde agent" in r["@message"] for r in a3.log_records()), "agent 3: no other agent seen")
    check_eq(series(a3.metrics(), "sonde_probe_info", hook="sockops", mode="cgroup"), 1.0, "agent 3 injects")
    with open(LOCK) as f:
        check_eq(f.read().strip(), str(a3.proc.pid), "lock file holds agent 3's pid")
    check_eq(a3.stop(), 0, "agent 3 exits cleanly")

    print("== 6: nothing left holding the lock", flush=True)
    check(lock_free(), "lock free after the test")
    with open(LOCK) as f:
        check_eq(f.read(), "", "lock file emptied by the clean exit")
    finish("test_one_agent")


if __name__ == "__main__":
    main()
