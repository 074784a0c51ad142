"""Integration: sonde's OTLP/HTTP export, with the real agent tracing a real
Python http.server driven by curl, shipping to a Node OTLP receiver that
decodes with OpenTelemetry JS's own protobuf definitions. Asserts exact span
counts, names, kinds, attributes, resources, histogram counts and bounds
against /metrics, gzip on and off, headers, the always_off sampler, and the
fault paths: receiver down at start, 503s for a while, 400, partial
success, and a receiver that never comes (drops counted, RSS bounded)."""
import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Agent, ROOT, check, check_eq, exe_name, finish, free_port,  # noqa: E402
                     series, spawn, wait_until)

HERE = os.path.dirname(os.path.abspath(__file__))
RECEIVER = os.path.join(HERE, "otlp_receiver.js")
HOST = socket.gethostname()


class Receiver:
    def __init__(self, port=None):
        self.port = port or free_port()
        self.out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build",
                                f"otlp-recv-{self.port}.jsonl")
        if os.path.exists(self.out):
            os.unlink(self.out)
        self.proc = spawn(["node", RECEIVER, str(self.port), self.out], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if line != f"ready {self.port}":
            raise SystemExit(f"FAIL: OTLP receiver did not start: {line!r}")
        self.url = f"http://127.0.0.1:{self.port}"

    def control(self, query):
        req = urllib.request.Request(f"{self.url}/control?{query}", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.read()

    def records(self, path=None):
        if not os.path.exists(self.out):
            return []
        with open(self.out) as f:
            recs = [json.loads(l) for l in f if l.strip()]
        return [r for r in recs if path is None or r["path"] == path]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)


def start_agent(env, *args, print_spans=False, name="agent"):
    """An agent with these variables (OTLP settings, SONDE_*) in its environment."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return Agent(*args, print_spans=print_spans, name=name)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def start_server():
    port = free_port()
    p = spawn([sys.executable, os.path.join(HERE, "pyserver.py"), str(port)], stdout=subprocess.PIPE, text=True)
    if p.stdout.readline().strip() != "ready":
        raise SystemExit("FAIL: python server did not start")
    return p, port


def curl(port, paths):
    """One curl process, one keep-alive connection; returns the statuses."""
    out = subprocess.run(["curl", "-s", "-H", "X-Request-ID: rid-42", "-w", "%{http_code}\n",
                          *[a for p in paths for a in ("-o", "/dev/null", f"http://127.0.0.1:{port}{p}")]],
                         capture_output=True, text=True, timeout=60).stdout.split()
    return out


def attrs(kvs):
    out = {}
    for kv in kvs or []:
        v = kv.get("value", {})
        if "stringValue" in v:
            out[kv["key"]] = v["stringValue"]
        elif "intValue" in v:
            out[kv["key"]] = int(v["intValue"])
        elif "boolValue" in v:
            out[kv["key"]] = v["boolValue"]
        elif "arrayValue" in v:
            out[kv["key"]] = [x.get("stringValue") for x in v["arrayValue"].get("values", [])]
        else:
            out[kv["key"]] = v
    return out


def spans_of(recs, status=200):
    """[(resource attrs, span)] from the accepted trace requests."""
    out = []
    for r in recs:
        if r.get("status") != status or "body" not in r:
            continue
        for rs in r["body"].get("resourceSpans", []):
            ra = attrs(rs.get("resource", {}).get("attributes"))
            for ss in rs.get("scopeSpans", []):
                for sp in ss.get("spans", []):
                    out.append((ra, sp))
    return out


def server_spans(recs, port, status=200):
    return [(ra, sp) for ra, sp in spans_of(recs, status)
            if sp.get("kind") == 2 and attrs(sp.get("attributes")).get("server.port") == port]


def hist_points(rec, name, port):
    """Data points of histogram name with server.port == port in one request."""
    pts = []
    for rm in rec.get("body", {}).get("resourceMetrics", []):
        for sm in rm.get("scopeMetrics", []):
            for m in sm.get("metrics", []):
                if m["name"] == name and "histogram" in m:
                    for p in m["histogram"].get("dataPoints", []):
                        if attrs(p.get("attributes")).get("server.port") == port:
                            pts.append((m, p))
    return pts


def hist_count(recs, port):
    """Sum of http.server.request.duration counts for port in the latest
    accepted metrics request (cumulative: the latest has everything)."""
    ok = [r for r in recs if r.get("status") == 200 and "body" in r]
    if not ok:
        return None
    return sum(int(p.get("count", 0)) for _, p in hist_points(ok[-1], "http.server.request.duration", port))


def export_series(agent, name, **labels):
    return series(agent.metrics(), name, **labels)


def main():
    if os.geteuid() != 0:
        raise SystemExit("FAIL: the integration tests load BPF programs and must run as root")
    if subprocess.run([os.path.join(ROOT, "scripts", "otlp-receiver-deps.sh")]).returncode != 0:
        raise SystemExit("FAIL: cannot install the OTLP receiver's decoder (npm)")

    # ---- A: gzip, headers, resource attributes; then 503s, 400, partial success
    print("== A: gzip, headers, resource attributes", flush=True)
    rcv = Receiver()
    srv, port = start_server()
    svc = exe_name(srv.pid)
    agent = start_agent({"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.url, "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
                         "OTEL_EXPORTER_OTLP_HEADERS": "x-sonde-test=a%20b,authorization=Bearer%20t0k",
                         "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=ci,team=obs%2Cnet",
                         "OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_METRIC_EXPORT_INTERVAL": "500"},
                        "--port", str(port), "--no-host-metrics")
    paths = ["/hello"] * 4 + ["/items/7", "/items/8"] + ["/missing"] * 2 + ["/boom"]
    check_eq(curl(port, paths), ["200"] * 6 + ["404"] * 2 + ["500"], "curl statuses (A)")
    n = len(paths)
    wait_until("A: 9 server spans exported", lambda: len(server_spans(rcv.records("/v1/traces"), port)) >= n)
    time.sleep(0.5)  # a late duplicate would show up here
    trecs = rcv.records("/v1/traces")
    got = server_spans(trecs, port)
    check_eq(len(got), n, "A: server spans received exactly once each")
    check(all(r["headers"].get("content-encoding") == "gzip" for r in trecs), "A: trace bodies gzip")
    check(all(r["headers"].get("x-sonde-test") == "a b" for r in trecs), "A: OTEL_EXPORTER_OTLP_HEADERS sent")
    check(all(r["headers"].get("authorization") == "Bearer t0k" for r in trecs), "A: second header sent")
    check(all(r["headers"].get("content-type") == "application/x-protobuf" for r in trecs), "A: content-type")
    names = sorted(sp["name"] for _, sp in got)
    check_eq(names, sorted(["GET /hello"] * 4 + ["GET /items/{id}"] * 2 + ["GET /missing"] * 2 + ["GET /boom"]),
             "A: span names")
    ra = got[0][0]
    check_eq(ra.get("service.name"), svc, "A: resource service.name")
    check_eq(ra.get("process.pid"), srv.pid, "A: resource process.pid is the server's pid")
    check_eq(ra.get("host.name"), HOST, "A: resource host.name")
    check_eq(ra.get("process.executable.name"), svc, "A: resource process.executable.name")
    check(str(port) in ra.get("process.command_line", ""), "A: resource process.command_line")
    check_eq(ra.get("telemetry.sdk.name"), "sonde", "A: telemetry.sdk.name")
    check_eq(ra.get("deployment.environment"), "ci", "A: OTEL_RESOURCE_ATTRIBUTES")
    check_eq(ra.get("team"), "obs,net", "A: OTEL_RESOURCE_ATTRIBUTES %-decoded")
    by_name = {}
    for _, sp in got:
        by_name.setdefault(sp["name"], []).append(sp)
    boom = by_name["GET /boom"][0]
    ba = attrs(boom["attributes"])
    check_eq(ba.get("http.response.status_code"), 500, "A: /boom status attribute")
    check_eq(ba.get("http.request.method"), "GET", "A: method attribute")
    check_eq(ba.get("url.path"), "/boom", "A: url.path")
    check_eq(ba.get("url.scheme"), "http", "A: url.scheme")
    check_eq(ba.get("http.route"), "/boom", "A: http.route")
    check_eq(ba.get("server.address"), "127.0.0.1", "A: server.address")
    check_eq(ba.get("client.address"), "127.0.0.1", "A: client.address")
    check_eq(ba.get("network.protocol.version"), "1.1", "A: network.protocol.version")
    # X-Request-ID and error.type reach the span only once the span builder
    # records them (trace-context work); the encoding is covered by test_otlp.c.
    if any("http.request.header.x-request-id" in attrs(sp["attributes"]) for _, sp in got):
        check(all(attrs(sp["attributes"]).get("http.request.header.x-request-id") == ["rid-42"] for _, sp in got),
              "A: x-request-id as a string array on every span")
    else:
        print("   NOTE: spans carry no X-Request-ID in this build (not recorded by the span builder yet); "
              "not asserted here", flush=True)
    item = attrs(by_name["GET /items/{id}"][0]["attributes"])
    check_eq(item.get("http.route"), "/items/{id}", "A: route of /items/7")
    check_eq(item.get("http.response.status_code"), 200, "A: /items status")
    check_eq(sorted(attrs(s["attributes"])["url.path"] for s in by_name["GET /items/{id}"]),
             ["/items/7", "/items/8"], "A: url.path keeps the id")
    check(all(len(base64.b64decode(sp["traceId"])) == 16 and len(base64.b64decode(sp["spanId"])) == 8
              for _, sp in got), "A: 16-byte trace ids, 8-byte span ids")
    check_eq(len({sp["traceId"] for _, sp in got}), n, "A: distinct trace ids (no trace context yet)")
    check(all(int(sp["endTimeUnixNano"]) > int(sp["startTimeUnixNano"]) > (time.time() - 120) * 1e9
              for _, sp in got), "A: wall-clock start/end")
    check_eq(boom.get("status", {}).get("code"), 2, "A: /boom status ERROR")
    check_eq(ba.get("error.type"), "500", "A: /boom error.type")
    # a 404 is the client's error, not the server's
    check_eq(sorted({(sp["name"], sp.get("status", {}).get("code", 0), attrs(sp["attributes"]).get("error.type"))
                     for _, sp in got if sp["name"] != "GET /boom"}),
             [("GET /hello", 0, None), ("GET /items/{id}", 0, None), ("GET /missing", 0, None)],
             "A: status unset and no error.type on the other server spans")
    client = [sp for ra_, sp in spans_of(trecs) if sp.get("kind") == 3 and ra_.get("service.name") == "curl"]
    check_eq(len(client), n, "A: curl's client spans")
    check_eq(sorted({attrs(s["attributes"]).get("url.full") for s in client}),
             sorted({f"http://127.0.0.1:{port}{p}" for p in paths}), "A: client url.full")

    # metrics: the latest export counts every request, with /metrics' bounds
    mrecs = wait_until("A: metrics export with 9 requests",
                       lambda: (hist_count(rcv.records("/v1/metrics"), port) == n) and rcv.records("/v1/metrics"))
    last = [r for r in mrecs if r.get("status") == 200][-1]
    check(all(r["headers"].get("content-encoding") == "gzip" for r in mrecs), "A: metric bodies gzip")
    pts = hist_points(last, "http.server.request.duration", port)
    prom = agent.metrics_text()
    bounds = sorted({float(l.split('le="')[1].split('"')[0]) for l in prom.splitlines()
                     if l.startswith("http_server_request_duration_seconds_bucket") and f'server_port="{port}"' in l
                     and 'le="+Inf"' not in l})
    check(len(pts) == 4, f"A: 4 server label sets (hello, items, missing, boom), got {len(pts)}")
    # http.route -> (method, status, error.type) of its server series
    want_pts = {"/hello": ("GET", 200, None), "/items/{id}": ("GET", 200, None),
                "/missing": ("GET", 404, None), "/boom": ("GET", 500, "500")}
    for m, p in pts:
        check_eq(m.get("unit"), "s", "A: histogram unit")
        check_eq(m["histogram"].get("aggregationTemporality"), 2, "A: cumulative temporality")
        check_eq([float(b) for b in p.get("explicitBounds", [])], bounds, "A: bucket bounds equal /metrics")
        check_eq(sum(int(c) for c in p["bucketCounts"]), int(p["count"]), "A: bucket counts add up")
        pa = attrs(p["attributes"])
        method, status, err = want_pts.get(pa["http.route"], (None, None, None))
        check_eq((pa["http.request.method"], pa["http.response.status_code"], pa.get("error.type")),
                 (method, status, err), f"A: attributes of the {pa['http.route']} series")
        prom_count = series(agent.metrics(), "http_server_request_duration_seconds_count",
                            http_request_method=method, http_response_status_code=str(status),
                            http_route=pa["http.route"], service_name=svc, server_port=str(port),
                            error_type=err or "")
        check_eq(int(p["count"]), int(prom_count or -1), f"A: count of {pa['http.route']} equals /metrics")

    # 503 for 1.5 s: retried, nothing lost, nothing duplicated
    print("== A: receiver answers 503 for 1.5 s", flush=True)
    rcv.control("fail_ms=1500")
    paths2 = [f"/items/{100 + i}" for i in range(20)]
    check_eq(curl(port, paths2), ["200"] * 20, "curl statuses (503 phase)")

    def phase2():
        s = [attrs(sp["attributes"])["url.path"] for _, sp in server_spans(rcv.records("/v1/traces"), port)]
        return s if all(p in s for p in paths2) else None
    wait_until("A: spans after 503s", phase2, timeout=20)
    time.sleep(0.5)
    s = [attrs(sp["attributes"])["url.path"] for _, sp in server_spans(rcv.records("/v1/traces"), port)]
    check_eq(sorted(p for p in s if p in paths2), sorted(paths2), "A: each span of the 503 phase exactly once")
    n503 = len([r for r in rcv.records("/v1/traces") if r["status"] == 503])
    check(n503 >= 1, f"A: the receiver answered 503 at least once (got {n503})")
    fails = export_series(agent, "sonde_export_requests_total", signal="traces", result="failure")
    check(fails is not None and fails >= n503, f"A: failed attempts counted ({fails} >= {n503})")
    check_eq(export_series(agent, "sonde_export_dropped_total", signal="traces", reason="retries_exhausted"), 0.0,
             "A: nothing dropped while the receiver was busy")

    # one 503 with Retry-After: 2 → the retry waits 2 s, not the 0.25-0.5 s backoff
    print("== A: 503 with Retry-After: 2", flush=True)
    rcv.control("fail=1&retry_after=2&path=/v1/traces")
    check_eq(curl(port, ["/items/999"]), ["200"], "curl (Retry-After phase)")

    def retried():
        recs = rcv.records("/v1/traces")
        for i, r in enumerate(recs):
            if r["status"] == 503 and any(attrs(sp["attributes"]).get("url.path") == "/items/999"
                                          for _, sp in spans_of([r], 503)):
                later = [x for x in recs[i + 1:] if x["status"] == 200 and any(
                    attrs(sp["attributes"]).get("url.path") == "/items/999" for _, sp in spans_of([x]))]
                return (r, later[0]) if later else None
        return None
    first, again = wait_until("A: retried after Retry-After", retried, timeout=15)
    gap = (again["time"] - first["time"]) / 1000
    check(1.9 <= gap < 3.5, f"A: retry waited for Retry-After (gap {gap:.2f} s)")

    # 400 for the next request: dropped as rejected, exactly its spans
    print("== A: 400 rejects one request; partial success on the next", flush=True)
    rcv.control("status=400&n=1&path=/v1/traces")
    check_eq(curl(port, ["/hello"]), ["200"], "curl (400 phase)")
    rej = wait_until("A: a 400", lambda: [r for r in rcv.records("/v1/traces") if r["status"] == 400])
    time.sleep(0.6)  # the (single) request has been counted by now
    rejected_spans = sum(1 for _ in spans_of(rej, 400))
    check(rejected_spans in (1, 2), f"A: the 400 request carried this phase's spans ({rejected_spans})")
    wait_until("A: rejected spans counted", lambda: export_series(
        agent, "sonde_export_dropped_total", signal="traces", reason="rejected") == rejected_spans)
    check_eq(export_series(agent, "sonde_export_dropped_total", signal="traces", reason="rejected"),
             float(rejected_spans), "A: dropped{reason=rejected} equals the refused request's spans")
    rcv.control("partial=1")
    check_eq(curl(port, ["/hello"]), ["200"], "curl (partial phase)")
    wait_until("A: partial success counted", lambda: export_series(
        agent, "sonde_export_dropped_total", signal="traces", reason="partial_success") == 1.0)
    check_eq(export_series(agent, "sonde_export_dropped_total", signal="traces", reason="partial_success"), 1.0,
             "A: dropped{reason=partial_success} equals rejected_spans")
    check(any("rejected part of a request" in r.get("@message", "") and r.get("rejected") == 1
              for r in agent.log_records()), "A: partial success logged")
    accepted = len(spans_of(rcv.records("/v1/traces")))
    exported = export_series(agent, "sonde_export_spans_total")
    check_eq(exported, float(accepted - 1), "A: sonde_export_spans_total = accepted spans - rejected part")
    check_eq(agent.stop(), 0, "A: agent exits cleanly")
    srv.terminate()
    rcv.stop()

    # ---- B: no gzip, sampler always_off: no spans, metrics still count
    print("== B: always_off sampler, no compression", flush=True)
    rcv = Receiver()
    srv, port = start_server()
    agent = start_agent({"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.url, "OTEL_TRACES_SAMPLER": "always_off",
                         "OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_METRIC_EXPORT_INTERVAL": "500"},
                        "--port", str(port), "--no-host-metrics")
    check_eq(curl(port, ["/hello"] * 7), ["200"] * 7, "curl statuses (B)")
    mrecs = wait_until("B: metrics count 7", lambda: hist_count(rcv.records("/v1/metrics"), port) == 7
                       and rcv.records("/v1/metrics"))
    check(all("content-encoding" not in r["headers"] for r in mrecs), "B: no compression")
    time.sleep(0.5)
    check_eq(len(rcv.records("/v1/traces")), 0, "B: always_off sends no trace requests")
    check_eq(hist_count(rcv.records("/v1/metrics"), port), 7, "B: metrics still count every request")
    # families refreshed only on demand (like on a scrape) are current in OTLP
    # too; this agent's /metrics was never scraped
    last = [r for r in rcv.records("/v1/metrics") if r["status"] == 200][-1]
    build = [p for rm in last["body"]["resourceMetrics"] for sm in rm["scopeMetrics"] for m in sm["metrics"]
             if m["name"] == "sonde_build_info" for p in m["gauge"]["dataPoints"]]
    check_eq([(attrs(p["attributes"]), p.get("asDouble")) for p in build], [({"version": "0.1.0"}, 1)],
             "B: sonde_build_info gauge exported without a scrape")
    res = attrs(last["body"]["resourceMetrics"][0]["resource"]["attributes"])
    check_eq((res.get("service.name"), res.get("host.name")), ("sonde", HOST), "B: metrics resource")
    check_eq(agent.stop(), 0, "B: agent exits cleanly")
    srv.terminate()
    rcv.stop()

    # ---- C: receiver down at start, up later: data arrives after retries
    print("== C: receiver down at start", flush=True)
    rport = free_port()
    srv, port = start_server()
    # (the endpoint given as --otlp-endpoint this time)
    agent = start_agent({"OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_METRIC_EXPORT_INTERVAL": "500"},
                        "--pid", str(srv.pid), "--no-host-metrics", "--otlp-endpoint", f"http://127.0.0.1:{rport}")
    check_eq(curl(port, ["/hello"] * 5), ["200"] * 5, "curl statuses (C)")
    wait_until("C: failed attempts", lambda: (export_series(
        agent, "sonde_export_requests_total", signal="traces", result="failure") or 0) >= 1)
    rcv = Receiver(rport)
    wait_until("C: 5 spans after the receiver came up",
               lambda: len(server_spans(rcv.records("/v1/traces"), port)) >= 5, timeout=30)
    time.sleep(0.5)
    check_eq(len(server_spans(rcv.records("/v1/traces"), port)), 5, "C: exactly the 5 spans")
    check_eq(wait_until("C: metrics arrive", lambda: hist_count(rcv.records("/v1/metrics"), port), timeout=30),
             5, "C: metrics count 5")
    for r in ("queue_full", "retries_exhausted", "rejected"):
        check_eq(export_series(agent, "sonde_export_dropped_total", signal="traces", reason=r), 0.0,
                 f"C: nothing dropped ({r})")
    check(any(r.get("@message") == "OTLP export recovered" for r in agent.log_records()), "C: recovery logged")
    check_eq(agent.stop(), 0, "C: agent exits cleanly")
    srv.terminate()
    rcv.stop()

    # ---- E: no endpoint → nothing sent, said once; bad settings → exit 2
    print("== E: no endpoint; invalid settings", flush=True)
    for k in [k for k in os.environ if k.startswith("OTEL_")]:
        os.environ.pop(k)
    srv, port = start_server()
    agent = start_agent({}, "--port", str(port), "--no-host-metrics")
    check_eq(curl(port, ["/hello"]), ["200"], "curl (E)")
    off = [r for r in agent.log_records() if r.get("@message", "").startswith("OTLP export off")]
    check_eq(len(off), 1, "E: 'OTLP export off' logged once")
    check(not any(k[0].startswith("sonde_export_") for k in agent.metrics()), "E: no sonde_export_* families")
    check_eq(agent.stop(), 0, "E: agent exits cleanly")
    srv.terminate()
    for env, what in (({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"},
                       "OTEL_EXPORTER_OTLP_COMPRESSION"),
                      ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_TRACES_SAMPLER": "sometimes"},
                       "OTEL_TRACES_SAMPLER"),
                      ({"OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, "OTEL_EXPORTER_OTLP_HEADERS"),
                      # accepted before, and then every export failed forever
                      ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://[::1"},
                       "OTEL_EXPORTER_OTLP_ENDPOINT: OTLP endpoint 'http://[::1/v1/traces': "
                       "'[' of an IPv6 host without its ']'")):
        r = subprocess.run([os.path.join(ROOT, "build", "sonde"), "--listen", "none"], env={**os.environ, **env},
                           capture_output=True, text=True, timeout=30)
        check_eq(r.returncode, 2, f"E: invalid {what} exits with 2")
        check(what in r.stderr and "invalid OTLP configuration" in r.stderr, f"E: invalid {what} explained")
    # libcurl is mapped only when the workers start, but its absence still
    # stops the agent at start (a child process tries it): hidden here by a
    # bind mount of /dev/null in a private mount namespace.
    lib = os.path.realpath("/usr/lib/x86_64-linux-gnu/libcurl.so.4")
    if os.path.exists(lib):
        r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            f'mount --bind /dev/null "{lib}" && exec "$0" --listen none',
                            os.path.join(ROOT, "build", "sonde")],
                           env={**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"},
                           capture_output=True, text=True, timeout=30)
        check_eq(r.returncode, 1, "E: libcurl missing exits with 1")
        check("OTLP export impossible" in r.stderr and "libcurl.so.4" in r.stderr, "E: libcurl missing explained")
        check("sonde running" not in r.stderr, "E: libcurl missing: nothing attached")
    else:
        print(f"   NOTE: {lib} not found; the missing-libcurl check needs it to hide", flush=True)

    # ---- D: receiver never there: /metrics keeps working, drops counted
    print("== D: receiver gone for the whole test", flush=True)
    srv, port = start_server()
    agent = start_agent({"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",
                         "OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_BSP_MAX_QUEUE_SIZE": "10",
                         "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "5", "SONDE_OTLP_RETRY_MAX_ELAPSED": "1500",
                         "OTEL_METRIC_EXPORT_INTERVAL": "200"},
                        "--pid", str(srv.pid), "--no-host-metrics")
    rss0 = export_series(agent, "sonde_process_resident_memory_bytes")
    total = 0
    for _ in range(3):
        check_eq(curl(port, ["/hello"] * 40), ["200"] * 40, "curl statuses (D)")
        total += 40
    m = agent.metrics()
    check_eq(series(m, "http_server_request_duration_seconds_count", http_request_method="GET",
                    http_response_status_code="200", http_route="/hello", service_name=exe_name(srv.pid),
                    server_port=str(port), error_type=""), float(total), "D: /metrics still counts every request")

    def settled_drops():
        q = export_series(agent, "sonde_export_queue_spans")
        full = export_series(agent, "sonde_export_dropped_total", signal="traces", reason="queue_full")
        ex = export_series(agent, "sonde_export_dropped_total", signal="traces", reason="retries_exhausted")
        return (full, ex) if q == 0 and full + ex == total else None
    full, ex = wait_until("D: every span dropped and counted", settled_drops, timeout=30)
    check_eq(full + ex, float(total), "D: queue_full + retries_exhausted = spans made")
    check(full > 0 and ex > 0, f"D: both reasons seen (queue_full {full}, retries_exhausted {ex})")
    check_eq(export_series(agent, "sonde_export_dropped_total", signal="traces", reason="rejected"), 0.0,
             "D: no rejected")
    check_eq(export_series(agent, "sonde_export_spans_total"), 0.0, "D: nothing exported")
    mex = export_series(agent, "sonde_export_dropped_total", signal="metrics", reason="retries_exhausted") or 0
    mfull = export_series(agent, "sonde_export_dropped_total", signal="metrics", reason="queue_full") or 0
    check(mex + mfull > 0, f"D: metric snapshots dropped and counted ({mex} exhausted, {mfull} superseded)")
    rss1 = export_series(agent, "sonde_process_resident_memory_bytes")
    print(f"   RSS before {rss0 / 2**20:.1f} MiB, after {rss1 / 2**20:.1f} MiB", flush=True)
    check(rss1 - rss0 < 16 * 2**20, f"D: RSS bounded (grew {(rss1 - rss0) / 2**20:.1f} MiB)")
    t0 = time.monotonic()
    check_eq(agent.stop(), 0, "D: agent exits cleanly with a dead receiver")
    print(f"   shutdown took {time.monotonic() - t0:.2f} s", flush=True)
    stopped = [r for r in agent.log_records() if r.get("@message") == "OTLP exporter stopped"]
    check(len(stopped) == 1 and stopped[0]["flush_ms"] <= 2100,
          f"D: shutdown flush bounded by 2 s ({stopped[0]['flush_ms'] if stopped else '?'} ms)")
    srv.terminate()
    finish("test_otlp")


if __name__ == "__main__":
    main()
