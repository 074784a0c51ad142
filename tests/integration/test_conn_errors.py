"""Integration: client requests the connection fails under. A real server
that hangs up, resets, cuts a body short or never answers (faultserver.py),
called by Python's http.client, curl and nginx (proxy_pass, with
proxy_read_timeout); the real agent must report every such request as a
client span with no status (or the status of the cut response), error.type
connection_closed / connection_reset / request_cancelled, in --print spans,
in /metrics (error_type label) and in OTLP (status ERROR, error.type, decoded
by the Node receiver). nginx's own answers (502, 504) are server spans with
error.type. ETIMEDOUT and unreachable hosts cannot be produced on loopback
here: they are covered by the connection-table unit tests (test_conn) only."""
import http.client
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Nginx, check, check_eq, exe_name, finish, free_port, spawn, wait_until  # noqa: E402
from test_otlp import Receiver, attrs, hist_points, spans_of, start_agent  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT_H = "http_client_request_duration_seconds_count"
SERVER_H = "http_server_request_duration_seconds_count"
N = 3        # requests per failing path and client
N_HANG = 2   # requests left hanging per client (each costs a timeout)
PY_TIMEOUT = 0.5
CURL_TIMEOUT = 1
NGINX_TIMEOUT = 1

# path -> (status, error_type, incomplete) of the client span
OUTCOME = {
    "/close": (0, "connection_closed", False),
    "/reset": (0, "connection_reset", False),
    "/cut": (200, "connection_closed", True),
    "/cutreset": (200, "connection_reset", True),
    "/hang": (0, "request_cancelled", False),
    "/ok": (200, "", False),
}


def py_request(port, path, timeout=5):
    """One request on its own connection; returns what the client saw."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        return str(r.status)
    except Exception as e:  # noqa: BLE001 (the failure is the point)
        return type(e).__name__
    finally:
        c.close()


def curl(url, timeout=5):
    r = subprocess.run(["curl", "-s", "-m", str(timeout), "-o", "/dev/null", "-w", "%{http_code} %{exitcode}", url],
                       capture_output=True, text=True, timeout=timeout + 10)
    return r.stdout.strip()


def client_spans(agent, port):
    return [s for s in agent.spans() if s["kind"] == "client" and s["peer_port"] == port]


def tally(spans):
    out = {}
    for s in spans:
        k = (s["comm"], s["target"], s["status"], s.get("error_type", ""), bool(s.get("incomplete")))
        out[k] = out.get(k, 0) + 1
    return out


def metric_tally(m, name, port):
    """{(service, route, status, error_type): count} of name's series on port."""
    out = {}
    for (n, labels), v in m.items():
        d = dict(labels)
        if n == name and d.get("server_port") == str(port) and v:
            out[(d["service_name"], d["http_route"], d["http_response_status_code"], d["error_type"])] = int(v)
    return out


def main():
    if os.geteuid() != 0:
        raise SystemExit("FAIL: the integration tests load BPF programs and must run as root")
    fport = free_port()
    fault = spawn([sys.executable, os.path.join(HERE, "faultserver.py"), str(fport)],
                  stdout=subprocess.PIPE, text=True)
    if fault.stdout.readline().strip() != "ready":
        raise SystemExit("FAIL: fault server did not start")
    nginx = Nginx(locations=(
        f"        location /up/ {{ proxy_pass http://127.0.0.1:{fport}/; "
        f"proxy_read_timeout {NGINX_TIMEOUT}s; }}"))
    recv = Receiver()
    # always_on: a traceparent some other tracer on the host put in these
    # requests must not unsample them (parentbased would honour its flags)
    agent = start_agent({"OTEL_EXPORTER_OTLP_ENDPOINT": recv.url, "OTEL_BSP_SCHEDULE_DELAY": "200",
                         "OTEL_METRIC_EXPORT_INTERVAL": "500", "OTEL_TRACES_SAMPLER": "always_on"},
                        "--print", "spans")
    me = exe_name(os.getpid())
    comm = open("/proc/self/comm").read().strip()

    # ---- the clients ----
    seen = {}
    for path in ("/close", "/reset", "/cut", "/cutreset", "/ok"):
        seen[path] = [py_request(fport, path) for _ in range(N)]
    seen["/hang"] = [py_request(fport, "/hang", timeout=PY_TIMEOUT) for _ in range(N_HANG)]
    check_eq(seen, {"/close": ["RemoteDisconnected"] * N, "/reset": ["ConnectionResetError"] * N,
                    "/cut": ["IncompleteRead"] * N, "/cutreset": ["ConnectionResetError"] * N,
                    "/ok": ["200"] * N, "/hang": ["TimeoutError"] * N_HANG},
             "http.client saw the failures the server made")
    # curl: 56 = receive failure, 28 = operation timed out
    got = [curl(f"http://127.0.0.1:{fport}/reset") for _ in range(N)]
    got += [curl(f"http://127.0.0.1:{fport}/hang", CURL_TIMEOUT) for _ in range(N_HANG)]
    check_eq(got, ["000 56"] * N + ["000 28"] * N_HANG, "curl saw the reset and its own timeout")
    # nginx as the client of the fault server; curl is nginx's client
    want_nginx = {"/up/reset": "502 0", "/up/close": "502 0", "/up/ok": "200 0"}
    got = {p: [curl(nginx.url + p) for _ in range(N)] for p in want_nginx}
    got["/up/hang"] = [curl(nginx.url + "/up/hang") for _ in range(N_HANG)]
    check_eq(got, {**{p: [v] * N for p, v in want_nginx.items()}, "/up/hang": ["504 0"] * N_HANG},
             "nginx answered 502 for the reset/closed upstream, 504 for the hanging one")

    # ---- --print spans ----
    want = {}
    for path, (status, err, inc) in OUTCOME.items():
        want[(comm, path, status, err, inc)] = N_HANG if path == "/hang" else N
    want[("curl", "/reset", 0, "connection_reset", False)] = N
    want[("curl", "/hang", 0, "request_cancelled", False)] = N_HANG
    for path in ("/reset", "/close", "/ok"):
        status, err, inc = OUTCOME[path]
        want[("nginx", path, status, err, inc)] = N
    want[("nginx", "/hang", 0, "request_cancelled", False)] = N_HANG
    total = sum(want.values())
    wait_until(f"{total} client spans to the fault server",
               lambda: len(client_spans(agent, fport)) >= total, timeout=15, fatal=False)
    spans = client_spans(agent, fport)
    check_eq(tally(spans), want, "client spans to the fault server by (comm, target, status, error_type, incomplete)")
    # A request left hanging ends when its client gives up. The span starts
    # at the request's write; curl's -m clock starts before it connects, so
    # its span may be a few ms shorter than the timeout.
    for who, t, early in ((comm, PY_TIMEOUT, 0), ("curl", CURL_TIMEOUT, 100), ("nginx", NGINX_TIMEOUT, 0)):
        d = [s["duration_ms"] for s in spans if s["comm"] == who and s["target"] == "/hang"]
        check(len(d) == N_HANG and all(t * 1000 - early <= x < t * 1000 + 1500 for x in d),
              f"{who}: /hang spans last its {t} s timeout (got {d} ms)")
    nsrv = [s for s in agent.spans() if s["kind"] == "server" and s["local_port"] == nginx.port]
    got = {}
    for s in nsrv:
        k = (s["target"], s["status"], s.get("error_type", ""))
        got[k] = got.get(k, 0) + 1
    check_eq(got, {("/up/reset", 502, "502"): N, ("/up/close", 502, "502"): N, ("/up/ok", 200, ""): N,
                   ("/up/hang", 504, "504"): N_HANG}, "nginx server spans and their error_type")

    # ---- /metrics ----
    m = agent.metrics()
    mwant = {}
    for (c, path, status, err, _), n in want.items():
        svc = me if c == comm else c
        k = (svc, path, str(status) if status else "", err)
        mwant[k] = mwant.get(k, 0) + n
    check_eq(metric_tally(m, CLIENT_H, fport), mwant,
             "client histogram by (service, route, status, error_type): no status when none came")
    check_eq(metric_tally(m, SERVER_H, nginx.port),
             {("nginx", "/up/reset", "502", "502"): N, ("nginx", "/up/close", "502", "502"): N,
              ("nginx", "/up/ok", "200", ""): N, ("nginx", "/up/hang", "504", "504"): N_HANG},
             "nginx server histogram with error_type")

    # ---- OTLP ----
    def exported():
        return [(ra, sp) for ra, sp in spans_of(recv.records("/v1/traces"))
                if sp.get("kind") == 3 and attrs(sp.get("attributes")).get("server.port") == fport]
    wait_until(f"{total} client spans exported", lambda: len(exported()) >= total, timeout=15, fatal=False)
    got = {}
    for ra, sp in exported():
        a = attrs(sp.get("attributes"))
        k = (ra.get("service.name"), a.get("http.route"), a.get("http.response.status_code"),
             a.get("error.type"), sp.get("status", {}).get("code", 0))
        got[k] = got.get(k, 0) + 1
    # (service, route, status code attribute, error.type, span status code: 2 ERROR, 0 unset)
    owant = {(me, "/close", None, "connection_closed", 2): N, (me, "/reset", None, "connection_reset", 2): N,
             (me, "/cut", 200, "connection_closed", 2): N, (me, "/cutreset", 200, "connection_reset", 2): N,
             (me, "/hang", None, "request_cancelled", 2): N_HANG, (me, "/ok", 200, None, 0): N,
             ("curl", "/reset", None, "connection_reset", 2): N,
             ("curl", "/hang", None, "request_cancelled", 2): N_HANG,
             ("nginx", "/reset", None, "connection_reset", 2): N, ("nginx", "/close", None, "connection_closed", 2): N,
             ("nginx", "/ok", 200, None, 0): N, ("nginx", "/hang", None, "request_cancelled", 2): N_HANG}
    check_eq(got, owant, "OTLP client spans: (service, path, status code attr, error.type, status code)")

    def metric_points():
        ok = [r for r in recv.records("/v1/metrics") if r.get("status") == 200 and "body" in r]
        if not ok:
            return {}
        out = {}
        for _, p in hist_points(ok[-1], "http.client.request.duration", fport):
            a = attrs(p.get("attributes"))
            k = (a.get("service.name"), a.get("http.route"), a.get("http.response.status_code"),
                 a.get("error.type"))
            out[k] = out.get(k, 0) + int(p.get("count", 0))
        return out
    mowant = {k[:4]: n for k, n in owant.items()}  # the spans' attributes, without the span status
    wait_until("OTLP metrics to catch up", lambda: metric_points() == mowant, timeout=10, fatal=False)
    check_eq(metric_points(), mowant,
             "OTLP http.client.request.duration: error.type set, status code absent when none came")

    agent.stop()
    recv.stop()
    nginx.proc.terminate()
    fault.terminate()
    finish("test_conn_errors")


if __name__ == "__main__":
    main()
