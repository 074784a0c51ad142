"""Integration (issue #15 item 4): one noisy service must not hide every
other new service. The real agent; two Python http.server services, each
under its own copy of the interpreter (sonde names a service after its
executable): `routeflood` gets 3,000 distinct random-word paths from a
client (`routefloodc`) on three keep-alive connections, then `routequiet`
gets 100 requests to /ok from another client (`routequietc`).

Asserted from /metrics, for both HTTP families: the flooded service and its
client each have exactly --max-routes-per-service (100) route series, the
first 100 paths sent, plus one http_route="/{overflow}" series counting
the other 2,900; the quiet service's and its client's /ok series count
exactly 100; nothing went to otel_metric_overflow. --print spans carries
the same route (so OTLP's http.route, built from the same span, does)."""
import os
import random
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Agent, check, check_eq, finish, free_port, series, spawn,  # noqa: E402
                     wait_until)

FLOOD = 3000
BUDGET = 100
QUIET = 100
OVERFLOW = "/{overflow}"
SERVER = "http_server_request_duration_seconds_count"
CLIENT = "http_client_request_duration_seconds_count"

SERVER_CODE = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")
    def log_message(self, *a):
        pass

srv = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
print("ready", flush=True)
srv.serve_forever()
"""

# Paths from stdin, one a line, sent in order round-robin over NCONN
# keep-alive connections, each request answered before the next is sent.
CLIENT_CODE = r"""
import http.client, sys
port, nconn = int(sys.argv[1]), int(sys.argv[2])
paths = sys.stdin.read().split()
conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(nconn)]
socks = []
for i, p in enumerate(paths):
    c = conns[i % nconn]
    c.request("GET", p)
    r = c.getresponse()
    r.read()
    assert r.status == 200, r.status
    if len(socks) < nconn:
        socks.append(c.sock)
assert [c.sock for c in conns] == socks, "a connection was not kept alive"
print("done", len(paths), flush=True)
"""


def copy_python(tmp, name):
    exe = os.path.join(tmp, name)
    shutil.copy2(os.path.realpath(sys.executable), exe)
    return exe


def words(n, seed=15):
    """n distinct lowercase words, 5..10 letters: no digits, so route
    normalisation keeps every one; only the budget can bound them."""
    rnd, out, seen = random.Random(seed), [], set()
    while len(out) < n:
        w = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(5, 10)))
        if w not in seen:
            seen.add(w)
            out.append("/" + w)
    return out


def routes_of(m, name, svc):
    """{http_route: count} of one service in one family."""
    out = {}
    for (n, labels), v in m.items():
        d = dict(labels)
        if n == name and d.get("service_name") == svc:
            out[d["http_route"]] = out.get(d["http_route"], 0) + v
    return out


def main():
    tmp = tempfile.mkdtemp(prefix="sonde-routes-")
    exes = {n: copy_python(tmp, n) for n in ("routeflood", "routequiet", "routefloodc", "routequietc")}
    agent = Agent(name="agent")
    fport, qport = free_port(), free_port()
    servers = []
    for name, port in (("routeflood", fport), ("routequiet", qport)):
        p = spawn([exes[name], "-c", SERVER_CODE, str(port)], stdout=subprocess.PIPE, text=True)
        check_eq(p.stdout.readline().strip(), "ready", f"{name} started")
        servers.append(p)

    paths = words(FLOOD)
    for name, port, sent in (("routefloodc", fport, paths), ("routequietc", qport, ["/ok"] * QUIET)):
        r = subprocess.run([exes[name], "-c", CLIENT_CODE, str(port), "3"], input="\n".join(sent),
                           capture_output=True, text=True, timeout=300)
        check_eq(r.stdout.strip(), f"done {len(sent)}", f"{name} sent every request ({r.stderr[-300:]})")

    def settled():
        m = agent.metrics()
        done = (sum(routes_of(m, SERVER, "routeflood").values()) == FLOOD and
                sum(routes_of(m, SERVER, "routequiet").values()) == QUIET and
                sum(routes_of(m, CLIENT, "routefloodc").values()) == FLOOD and
                sum(routes_of(m, CLIENT, "routequietc").values()) == QUIET)
        return m if done else None

    m = wait_until("every span on /metrics", settled, timeout=30, fatal=False) or agent.metrics()
    drops = {dict(l).get("ring"): v for (n, l), v in m.items() if n == "sonde_ringbuf_drops_total"}
    print(f"  ring drops during the test: {drops}", flush=True)

    for fam, flood_svc, quiet_svc, port_label in ((SERVER, "routeflood", "routequiet", "server_port"),
                                                  (CLIENT, "routefloodc", "routequietc", "server_port")):
        flood = routes_of(m, fam, flood_svc)
        check_eq(len(flood), BUDGET + 1, f"{fam}: {flood_svc} has {BUDGET} routes + {OVERFLOW}")
        admitted = set(flood) - {OVERFLOW}
        check(admitted == set(paths[:BUDGET]),
              f"{fam}: {flood_svc}'s routes are the first {BUDGET} paths sent "
              f"({len(admitted & set(paths[:BUDGET]))} of {len(admitted)} are)")
        check(all(flood[r] == 1 for r in paths[:BUDGET] if r in flood),
              f"{fam}: each admitted route counted once")
        check_eq(flood.get(OVERFLOW), float(FLOOD - BUDGET), f"{fam}: {flood_svc}'s {OVERFLOW} count")
        check_eq(routes_of(m, fam, quiet_svc), {"/ok": float(QUIET)}, f"{fam}: {quiet_svc} in its own /ok series")
    check_eq(series(m, SERVER, http_request_method="GET", http_response_status_code="200",
                    http_route="/ok", service_name="routequiet", server_port=str(qport), error_type=""),
             float(QUIET), "server: routequiet /ok series, exact labels")
    check_eq(series(m, CLIENT, http_request_method="GET", http_response_status_code="200",
                    http_route="/ok", service_name="routequietc", server_address="127.0.0.1",
                    server_port=str(qport), error_type=""),
             float(QUIET), "client: routequietc /ok series, exact labels")
    for fam in ("http_server_request_duration_seconds", "http_client_request_duration_seconds"):
        check_eq(series(m, "sonde_metric_series_dropped_total", metric=fam) or 0.0, 0.0,
                 f"{fam}: nothing diverted to otel_metric_overflow")

    # --print spans: the span's own route follows the label.
    spans = [s for s in agent.spans() if s.get("service") == "routeflood" and s.get("kind") == "server"]
    check_eq(len(spans), FLOOD, "routeflood server spans printed")
    over = [s for s in spans if s["route"] == OVERFLOW]
    check_eq(len(over), FLOOD - BUDGET, f"printed spans with route {OVERFLOW}")
    check(sorted(s["target"] for s in over) == sorted(paths[BUDGET:]),
          "their targets are the paths past the budget")

    check_eq(agent.stop(), 0, "agent exit status")
    shutil.rmtree(tmp, ignore_errors=True)
    finish("test_route_budget")


if __name__ == "__main__":
    main()
