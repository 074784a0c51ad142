"""Integration: the W3C trace chain seen through OTLP. The real agent injects
traceparent (sockops + sk_msg) into a chain of three unmodified Python
programs (this test's http.client -> service A, a ThreadingHTTPServer that
calls B with http.client -> service B, tracechain.py) and exports to the Node
receiver, which decodes with OpenTelemetry JS's protobuf code. Everything is
asserted on the decoded OTLP spans and metrics, not on --print spans."""
import base64
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ROOT, check, check_eq, exe_name, finish, free_port, series, wait_until  # noqa: E402
from test_otlp import Receiver, attrs, start_agent  # noqa: E402
from test_tracectx import get, read_log, start  # noqa: E402

import tempfile  # noqa: E402

N_PLAIN = 5   # client requests without traceparent
N_OWN = 3     # client requests that carry their own traceparent
SERVER, CLIENT = 2, 3  # OTLP SpanKind


def own_tp(i):
    return f"00-{'c0ffee%02d' % i}{'0' * 22}{i + 1:02x}-{'ab' * 7}{i + 1:02x}-01"


def hexid(b64):
    return base64.b64decode(b64).hex() if b64 else ""


class Chain:
    """A on 127.0.0.1, B on 127.0.0.1 and ::1 (tracechain.py needs both)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sonde-trace-otlp-")
        self.alog = os.path.join(self.dir, "a.jsonl")
        self.blog = os.path.join(self.dir, "b.jsonl")
        self.b4, self.b6, self.a = free_port(), free_port(), free_port()
        self.pb4 = start(["b", self.b4, "127.0.0.1", self.blog])
        self.pb6 = start(["b", self.b6, "::1", self.blog])
        self.pa = start(["a", self.a, self.b4, self.b6, self.alog])
        self.ports = {self.a, self.b4, self.b6}

    def received(self, log, path):
        """The traceparent lines of the one request for path, or None."""
        got = [e for e in read_log(log) if e["path"] == path]
        check_eq(len(got), 1, f"{path} reached {os.path.basename(log)[0].upper()} once")
        return got[0]["traceparent"] if got else None


def otlp_spans(recs):
    """Flattened spans of accepted trace requests, with their resource and
    hex ids."""
    out = []
    for r in recs:
        if r.get("status") != 200 or "body" not in r:
            continue
        for rs in r["body"].get("resourceSpans", []):
            ra = attrs(rs.get("resource", {}).get("attributes"))
            for ss in rs.get("scopeSpans", []):
                for sp in ss.get("spans", []):
                    a = attrs(sp.get("attributes"))
                    out.append({"service": ra.get("service.name"), "pid": ra.get("process.pid"),
                                "kind": sp.get("kind"), "name": sp.get("name"),
                                "trace": hexid(sp.get("traceId")), "span": hexid(sp.get("spanId")),
                                "parent": hexid(sp.get("parentSpanId")), "flags": int(sp.get("flags", 0)),
                                "trace_state": sp.get("traceState", ""), "port": a.get("server.port"),
                                "path": a.get("url.path") or a.get("url.full", ""),
                                "query": a.get("url.query"), "status": a.get("http.response.status_code")})
    return out


def role(s, chain, me):
    """Which hop of the chain a span is, or None for foreign traffic."""
    if s["port"] not in chain.ports:
        return None
    if s["pid"] == me and s["kind"] == CLIENT and s["port"] == chain.a:
        return "client"
    if s["pid"] == chain.pa.pid:
        return {SERVER: "a_server", CLIENT: "a_client"}.get(s["kind"], "other")
    if s["pid"] in (chain.pb4.pid, chain.pb6.pid) and s["kind"] == SERVER:
        return "b_server"
    return "other"


def mine(rcv, chain, me):
    return [(role(s, chain, me), s) for s in otlp_spans(rcv.records("/v1/traces"))
            if role(s, chain, me) is not None]


def tp(s):
    return f"00-{s['trace']}-{s['span']}-{s['flags'] & 0xff:02x}"


def hist_count(rcv, name, port):
    """Sum of the counts of histogram name with server.port == port in the
    latest accepted metrics request (cumulative: it holds everything)."""
    ok = [r for r in rcv.records("/v1/metrics") if r.get("status") == 200 and "body" in r]
    if not ok:
        return None
    n = 0
    for rm in ok[-1]["body"].get("resourceMetrics", []):
        for sm in rm.get("scopeMetrics", []):
            for m in sm.get("metrics", []):
                if m["name"] == name and "histogram" in m:
                    for p in m["histogram"].get("dataPoints", []):
                        if attrs(p.get("attributes")).get("server.port") == port:
                            n += int(p.get("count", 0))
    return n


def main():
    if os.geteuid() != 0:
        raise SystemExit("FAIL: the integration tests load BPF programs and must run as root")
    if subprocess.run([os.path.join(ROOT, "scripts", "otlp-receiver-deps.sh")]).returncode != 0:
        raise SystemExit("FAIL: cannot install the OTLP receiver's decoder (npm)")
    me = os.getpid()
    chain = Chain()
    rcv = Receiver()
    svc = exe_name(chain.pa.pid)
    print(f"== A :{chain.a} -> B :{chain.b4}; receiver :{rcv.port}", flush=True)
    # Injection only towards the chain's ports and no learning: other
    # engineers' programs on this host are never touched.
    agent = start_agent({"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.url, "OTEL_BSP_SCHEDULE_DELAY": "200",
                         "OTEL_METRIC_EXPORT_INTERVAL": "500"},
                        "--inject-port", str(chain.a), "--inject-port", str(chain.b4),
                        "--inject-port", str(chain.b6), "--no-inject-learn", "--no-host-metrics")
    m = agent.metrics()
    check_eq(series(m, "sonde_probe_info", hook="sockops", mode="cgroup"), 1.0, "sockops attached")
    check_eq(series(m, "sonde_probe_info", hook="sk_msg", mode="sockhash"), 1.0, "sk_msg attached")

    print(f"== {N_PLAIN} requests without traceparent, {N_OWN} with their own", flush=True)
    plain = [f"/chain?n={i}" for i in range(N_PLAIN)]
    own = {f"/keep?n={i}": own_tp(i) for i in range(N_OWN)}
    for p in plain:
        check_eq(get(chain.a, p), 200, f"{p} status")
    for p, h in own.items():
        check_eq(get(chain.a, p, {"traceparent": h}), 200, f"{p} status")
    total = N_PLAIN + N_OWN
    want = 4 * total
    wait_until(f"{want} chain spans in OTLP", lambda: len(mine(rcv, chain, me)) >= want, timeout=20, fatal=False)
    time.sleep(0.6)  # a late duplicate would arrive within three export periods
    spans = mine(rcv, chain, me)

    print("== span counts and names", flush=True)
    counts = {}
    for r, s in spans:
        k = (s["service"], r, s["kind"], s["name"])
        counts[k] = counts.get(k, 0) + 1
    check_eq(counts, {(svc, "client", CLIENT, "GET /chain"): N_PLAIN,
                      (svc, "a_server", SERVER, "GET /chain"): N_PLAIN,
                      (svc, "a_client", CLIENT, "GET /chain"): N_PLAIN,
                      (svc, "b_server", SERVER, "GET /chain"): N_PLAIN,
                      (svc, "client", CLIENT, "GET /keep"): N_OWN,
                      (svc, "a_server", SERVER, "GET /keep"): N_OWN,
                      (svc, "a_client", CLIENT, "GET /keep"): N_OWN,
                      (svc, "b_server", SERVER, "GET /keep"): N_OWN},
             "OTLP spans per (service.name, hop, kind, name)")
    check_eq(len({s["span"] for _, s in spans}), len(spans), "every span id exported once")
    check(all(s["status"] == 200 for _, s in spans), "every chain span has status 200")

    def hop(r, path):
        """The one span of hop r for the request path (path with its query)."""
        got = [s for rr, s in spans if rr == r and
               (s["path"] if r in ("client", "a_client") else f"{s['path']}?{s['query']}").endswith(path)]
        check_eq(len(got), 1, f"{path}: one {r} span")
        return got[0] if got else {"trace": "?", "span": "?", "parent": "?", "flags": -1}

    print("== links without an incoming traceparent", flush=True)
    traces = set()
    for p in plain:
        c, asrv, acli, bsrv = (hop(r, p) for r in ("client", "a_server", "a_client", "b_server"))
        traces.add(c["trace"])
        check_eq({asrv["trace"], acli["trace"], bsrv["trace"]}, {c["trace"]}, f"{p}: one trace id for 4 spans")
        check_eq(c["parent"], "", f"{p}: the client span is the root")
        check_eq(asrv["parent"], c["span"], f"{p}: A server's parent is the client span")
        check_eq(acli["parent"], asrv["span"], f"{p}: A client's parent is A server")
        check_eq(bsrv["parent"], acli["span"], f"{p}: B server's parent is A client")
        check_eq(bsrv["flags"] & 0x300, 0x300, f"{p}: B server's parent is remote (flags)")
        check_eq(acli["flags"] & 0x300, 0x100, f"{p}: A client's parent is local (flags)")
        check_eq(chain.received(chain.alog, p), [tp(c)], f"{p}: A got exactly the client span's traceparent")
        check_eq(chain.received(chain.blog, p), [tp(acli)], f"{p}: B got exactly A client's traceparent")
    check_eq(len(traces), N_PLAIN, "a new trace per plain request")

    print("== a client traceparent is kept", flush=True)
    for p, h in own.items():
        c, asrv, acli, bsrv = (hop(r, p) for r in ("client", "a_server", "a_client", "b_server"))
        tid, pid_ = h[3:35], h[36:52]
        check_eq([c["trace"], asrv["trace"], acli["trace"], bsrv["trace"]], [tid] * 4,
                 f"{p}: the client's trace id through the whole chain")
        check_eq(c["parent"], pid_, f"{p}: client span's parent is its header's parent-id")
        check_eq(asrv["parent"], pid_, f"{p}: A server's parent is the header's parent-id")
        check_eq(asrv["flags"] & 0x300, 0x300, f"{p}: A server's parent is remote")
        check_eq(acli["parent"], asrv["span"], f"{p}: A client's parent is A server")
        check_eq(bsrv["parent"], acli["span"], f"{p}: B server's parent is A client")
        check_eq(chain.received(chain.alog, p), [h], f"{p}: A got only the client's header (no second one)")
        check_eq(chain.received(chain.blog, p), [tp(acli)], f"{p}: B got exactly A client's traceparent")

    print("== metrics", flush=True)
    for name, port, what in (("http.server.request.duration", chain.a, "A server"),
                             ("http.server.request.duration", chain.b4, "B server"),
                             ("http.client.request.duration", chain.a, "client -> A"),
                             ("http.client.request.duration", chain.b4, "A -> B")):
        wait_until(f"{what} count {total}", lambda: hist_count(rcv, name, port) == total, timeout=10,
                   fatal=False)
        check_eq(hist_count(rcv, name, port), total, f"OTLP {name} count for {what}")
    m = agent.metrics()
    check_eq(series(m, "sonde_injected_total"), float(N_PLAIN + total), "injected: client plain + every A->B")
    check_eq(series(m, "sonde_inject_skipped_total", reason="has_header"), float(N_OWN),
             "skipped has_header: the client's own headers")
    check_eq(series(m, "sonde_export_dropped_total", signal="traces", reason="queue_full"), 0.0,
             "no span dropped")
    check_eq(agent.stop(), 0, "agent exits cleanly")
    rcv.stop()
    finish("test_trace_otlp")


if __name__ == "__main__":
    main()
