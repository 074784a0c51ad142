"""Integration: a burst of 10,000 keep-alive connections with the agent's
default settings loses nothing (issue #15). One client process opens 10,000
connections to nginx in well under a second, each sends a request as soon
as it is connected; then every connection sends a second request while all
20,000 sockets (both ends traced) are alive. The agent runs with its
defaults (no --port, default rings, default connection table): every
request must become exactly one server span and one client span, with no
ring drop, no lost request, no eviction of a live connection, and no
error_type series (so SondeServiceHighErrorRatio stays quiet)."""
import os
import resource
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Agent, Nginx, check, check_eq, finish, wait_until  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CONNS = 10000
SERVER_H = "http_server_request_duration_seconds_count"
CLIENT_H = "http_client_request_duration_seconds_count"


def total(m, name, **want):
    return sum(v for (n, labels), v in m.items()
               if n == name and all(dict(labels).get(k, "") == w for k, w in want.items()))


def errors(m, name):
    return sum(v for (n, labels), v in m.items() if n == name and dict(labels).get("error_type", ""))


def main():
    if os.geteuid() != 0:
        raise SystemExit("FAIL: the integration tests load BPF programs and must run as root")
    # nginx and the client each hold one descriptor per connection
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    check(hard >= CONNS + 200, f"the descriptor limit ({hard}) allows {CONNS} connections")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    nginx = Nginx(locations='        location = /hello { return 200 "hello\\n"; }\n', connections=CONNS + CONNS // 2)
    port = str(nginx.port)
    agent = Agent(print_spans=False)
    m0 = agent.metrics()

    out = subprocess.run([sys.executable, os.path.join(HERE, "connburst.py"), port, str(CONNS)],
                         capture_output=True, text=True, timeout=120).stdout.split()
    check_eq(out[:3], ["done", str(2 * CONNS), "0"], "nginx answered both requests on every connection 200")
    print(f"   {CONNS} connections opened and first answered in {out[3]} s", flush=True)

    want = 2 * CONNS
    wait_until("every server span", lambda: total(agent.metrics(), SERVER_H, server_port=port) >= want,
               timeout=30, fatal=False)
    m = agent.metrics()

    def grew(name, **labels):
        return total(m, name, **labels) - total(m0, name, **labels)
    check_eq(grew("sonde_ringbuf_drops_total"), 0, "no ring record dropped")
    check_eq(grew("sonde_requests_lost_total"), 0, "no request lost")
    check_eq(grew("sonde_connections_evicted_total"), 0, "no live connection evicted from the table")
    check_eq(total(m, SERVER_H, server_port=port, http_route="/hello", http_response_status_code="200"),
             want, "one server span per request")
    check_eq(total(m, CLIENT_H, server_port=port, http_route="/hello", http_response_status_code="200"),
             want, "one client span per request")
    check_eq(errors(m, SERVER_H) + errors(m, CLIENT_H), 0, "no request reported failed (error_type)")
    rss = total(m, "sonde_process_resident_memory_bytes") / 2**20
    print(f"   agent RSS with {2 * CONNS} connections tracked: {rss:.1f} MiB", flush=True)
    check_eq(agent.stop(), 0, "the agent stops cleanly")
    finish("test_burst")


if __name__ == "__main__":
    main()
