"""Integration: observations lost with a full ring are not failures (issue
#15). The real agent, with the smallest rings, traces keep-alive clients
and nginx (wrk as the load); it is stopped (SIGSTOP) for a second in the middle
of the traffic, so that the kernel side fills the rings and drops records,
then resumed. Requests whose responses went with the dropped records must be
counted in sonde_requests_lost_total, never reported as failed client or
server requests: no error_type on any series (the numerator of
SondeServiceHighErrorRatio / SondeClientErrorRatio in deploy/ stays 0), and
the requests after the gap pair again."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Agent, Nginx, check, check_eq, finish, spawn, wait_until  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER_H = "http_server_request_duration_seconds_count"
CLIENT_H = "http_client_request_duration_seconds_count"
THREADS, SECONDS = 8, 3.0


def total(m, name, **want):
    return sum(v for (n, labels), v in m.items()
               if n == name and all(dict(labels).get(k, "") == w for k, w in want.items()))


def errors(m, name):
    return sum(v for (n, labels), v in m.items() if n == name and dict(labels).get("error_type", ""))


def main():
    if os.geteuid() != 0:
        raise SystemExit("FAIL: the integration tests load BPF programs and must run as root")
    nginx = Nginx(locations='        location = /hello { return 200 "hello\\n"; }\n')
    port = nginx.port
    # Smallest rings (256 KiB per CPU), only this port: a one-second stop
    # under keep-alive load overflows them.
    agent = Agent("--port", str(port), "--ring-bytes", "262144", "--no-sched", "--no-tcp-health",
                  print_spans=False)

    # Before the gap: a short run pairs exactly, nothing lost or failed.
    out = subprocess.run([sys.executable, os.path.join(HERE, "burstclient.py"), str(port), "2", "0.3"],
                         capture_output=True, text=True, timeout=60).stdout.split()
    check_eq(out[0], "done", "warm-up client finished")
    warm = int(out[1])
    wait_until("warm-up spans", lambda: total(agent.metrics(), SERVER_H, http_route="/hello") == warm)
    m = agent.metrics()
    check_eq(total(m, CLIENT_H, http_route="/hello"), warm, "warm-up: one client span per request")
    check_eq(errors(m, SERVER_H) + errors(m, CLIENT_H), 0, "warm-up: no failed requests")

    # The gap: the agent stops reading for 1 s in the middle of 3 s of
    # keep-alive load from wrk.
    wrk = spawn(["wrk", "-t1", f"-c{THREADS}", f"-d{SECONDS:.0f}s", f"http://127.0.0.1:{port}/hello"],
                stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    agent.proc.send_signal(signal.SIGSTOP)
    time.sleep(1.0)
    agent.proc.send_signal(signal.SIGCONT)
    report = wrk.communicate(timeout=60)[0]
    sent = int(next(l.split()[0] for l in report.splitlines() if "requests in" in l))
    check("Non-2xx" not in report, "nginx answered every request 200")
    print(f"   wrk: {sent} requests on {THREADS} keep-alive connections", flush=True)

    def settled():
        a = agent.metrics()
        time.sleep(0.3)
        b = agent.metrics()
        return b if total(a, SERVER_H) == total(b, SERVER_H) and total(a, CLIENT_H) == total(b, CLIENT_H) else None
    m = wait_until("counts settle after the gap", settled, timeout=30)
    drops = total(m, "sonde_ringbuf_drops_total")
    lost = total(m, "sonde_requests_lost_total", protocol="http1")
    srv_ok = total(m, SERVER_H, http_route="/hello", error_type="") - warm
    cli_ok = total(m, CLIENT_H, http_route="/hello", error_type="") - warm
    print(f"   ring drops {drops:.0f}, lost {lost:.0f}, spans server {srv_ok:.0f} client {cli_ok:.0f}", flush=True)
    # Without drops the test would prove nothing: the gap must overflow.
    check(drops > 0, f"the 1 s stop overflowed the rings (drops {drops})")
    check(lost > 0, f"requests whose answers were dropped are counted lost ({lost})")
    check_eq(errors(m, SERVER_H), 0, "no server request reported failed (error_type) after the drops")
    check_eq(errors(m, CLIENT_H), 0, "no client request reported failed (error_type) after the drops")
    check(0 < srv_ok <= sent and 0 < cli_ok <= sent, f"spans within the requests sent ({srv_ok}, {cli_ok} of {sent})")

    # After the gap the pairing is exact again: a fresh run, nothing lost.
    lost0, s0, c0 = lost, total(m, SERVER_H, http_route="/hello"), total(m, CLIENT_H, http_route="/hello")
    out = subprocess.run([sys.executable, os.path.join(HERE, "burstclient.py"), str(port), "2", "0.3"],
                         capture_output=True, text=True, timeout=60).stdout.split()
    after = int(out[1])
    wait_until("post-gap spans", lambda: total(agent.metrics(), SERVER_H, http_route="/hello") == s0 + after)
    m = agent.metrics()
    check_eq(total(m, CLIENT_H, http_route="/hello"), c0 + after, "after the gap: one client span per request")
    check_eq(total(m, "sonde_requests_lost_total", protocol="http1"), lost0, "after the gap: nothing more lost")
    check_eq(errors(m, SERVER_H) + errors(m, CLIENT_H), 0, "after the gap: no failed requests")
    agent.stop()
    finish("test_lost")


if __name__ == "__main__":
    main()
