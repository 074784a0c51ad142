"""Integration: HTTP/2 and gRPC through sonde's real BPF programs.

- gRPC: a python3-grpcio server and client (generic handlers, no generated
  code; tests/integration/grpcpeer.py), unary and server-streaming calls
  answering OK / NOT_FOUND / INTERNAL / DEADLINE_EXCEEDED: exact
  rpc_{server,client}_duration_seconds counts per service/method/status,
  error.type per the OTel RPC rules, a traceparent honoured on the server
  span, and a channel opened before the agent started giving no span (and
  counted missed_start); the same spans over OTLP, as the Node receiver
  (tests/integration/otlp_receiver.js) decodes them.
- gRPC over TLS, the same peers with ssl_{server,channel}_credentials and a
  certificate made here: gRPC core runs OpenSSL over a BIO pair, and sonde
  binds each SSL to its socket by the ciphertext fed to it. The same exact
  counts, error.type and traceparent, three channels at once each landing
  on its own connection, and a channel older than the agent giving nothing.
- nginx (nginx-light, http2 on a cleartext port) driven by curl
  --http2-prior-knowledge and by h2load (200 requests multiplexed 10 at a
  time on one connection, with a repeated custom header, so that HPACK's
  dynamic table is used): exact counts per route and status, both sides.
- nghttpd (nghttp2-server) driven by nghttp (several streams on one
  connection) and curl: exact counts.
- h2c upgrade: lighttpd (mod_h2, server.h2c; nghttpd and nginx do not
  upgrade) driven by curl --http2 and nghttp -u on cleartext: the HTTP/1.1
  request answered 101 becomes stream 1 of the HTTP/2 that follows; exact
  counts per route and status on both sides, no span for the 101, stream 1
  named as sent, its traceparent honoured, HTTP2-Settings' table size
  followed.
- nginx over TLS with ALPN: HTTP/2 (curl --http2) and HTTP/1.1 on the same
  port stay exact, through the OpenSSL uprobes.
Every server and client is started here, on 127.0.0.1."""
import base64
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (NGINX_CONF, ROOT, Agent, check, check_eq, finish, free_port,  # noqa: E402
                     make_cert, series, spawn, wait_until)
from test_otlp import Receiver, attrs, spans_of, start_agent  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "grpcpeer.py")
# python3-grpcio is a Debian package: the system interpreter has it.
PY = "/usr/bin/python3"
RPC_S = "rpc_server_duration_seconds_count"
RPC_C = "rpc_client_duration_seconds_count"
HTTP_S = "http_server_request_duration_seconds_count"
HTTP_C = "http_client_request_duration_seconds_count"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


def dropped(m, reason):
    return series(m, "sonde_http2_dropped_total", reason=reason)


def rpc_counts(m, fam):
    out = {}
    for (name, labels), v in m.items():
        if name == fam:
            d = dict(labels)
            out[(d["rpc_service"], d["rpc_method"], d["rpc_grpc_status_code"])] = v
    return out


def http_counts(m, fam, port, service):
    out = {}
    for (name, labels), v in m.items():
        d = dict(labels)
        if name == fam and d.get("server_port") == str(port) and d.get("service_name") == service:
            out[(d["http_request_method"], d["http_route"], d["http_response_status_code"],
                 d["error_type"])] = v
    return out


def settle(agent, fn, want, what):
    """Waits (bounded) until fn(metrics) == want; returns the last metrics."""
    got = wait_until(what, lambda: (lambda m: m if fn(m) == want else None)(agent.metrics()),
                     timeout=20, fatal=False)
    return got or agent.metrics()


def test_grpc():
    print("== gRPC (python3-grpcio): unary + server streaming, statuses, traceparent, old channel",
          flush=True)
    port = free_port()
    srv = spawn([PY, PEER, "server", str(port)], stdout=subprocess.PIPE, text=True)
    check_eq(srv.stdout.readline().strip(), "ready", "gRPC server started")
    # a channel (one HTTP/2 connection) opened and used before the agent
    old = spawn([PY, PEER, "client", str(port), "Unary:old:4", "--hold"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, text=True)
    check_eq(old.stdout.readline().strip(), "held", "old channel made its first call")
    # spans also go over OTLP to the Node receiver, decoded independently
    rcv = Receiver()
    agent = start_agent({"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.url, "OTEL_BSP_SCHEDULE_DELAY": "200"},
                        "--port", str(port), "--no-host-metrics", print_spans=True, name="grpc agent")

    plan = "Unary:hi:3,Unary:notfound:2,Unary:internal:1,Unary:deadline:1,Stream:hi:2,Stream:notfound:1"
    r = subprocess.run([PY, PEER, "client", str(port), plan], capture_output=True, text=True, timeout=60)
    check_eq(r.stdout.split("\n"), ["DEADLINE_EXCEEDED 1", "INTERNAL 1", "NOT_FOUND 3", "OK 5", ""],
             f"client saw the statuses it asked for ({r.stderr[-300:]})")
    tp = f"00-{TRACE}-{PARENT}-01"
    r = subprocess.run([PY, PEER, "client", str(port), "Unary:traced:1", "--traceparent", tp],
                       capture_output=True, text=True, timeout=60)
    check_eq(r.stdout.strip(), "OK 1", "traced call answered")
    old.stdin.write("go\n")
    old.stdin.flush()
    check_eq(old.stdout.readline().strip(), "OK 4", "old channel made 4 more calls after the agent started")

    want = {
        ("demo.Echo", "Unary", "0"): 4.0, ("demo.Echo", "Unary", "5"): 2.0,
        ("demo.Echo", "Unary", "13"): 1.0, ("demo.Echo", "Unary", "4"): 1.0,
        ("demo.Echo", "Stream", "0"): 2.0, ("demo.Echo", "Stream", "5"): 1.0,
    }
    m = settle(agent, lambda m: (rpc_counts(m, RPC_S), rpc_counts(m, RPC_C)), (want, want),
               "gRPC series on /metrics")
    check_eq(rpc_counts(m, RPC_S), want, "rpc_server_duration_seconds counts per service/method/status "
             "(the old channel's 4 calls not among them)")
    check_eq(rpc_counts(m, RPC_C), want, "rpc_client_duration_seconds counts per service/method/status")
    check_eq(series(m, RPC_S, rpc_system="grpc", rpc_service="demo.Echo", rpc_method="Unary",
                    rpc_grpc_status_code="0", service_name="python3.11"), 4.0,
             "rpc_server series carries rpc_system and service_name")
    check_eq(dropped(m, "missed_start"), 2.0,
             "the old channel counted missed_start once per side (client and server process)")
    check_eq(dropped(m, "desync"), 0.0, "no HTTP/2 connection lost sync")
    check_eq(series(m, "sonde_parse_errors_total", protocol="http2"), 0.0, "no HTTP/2 parse errors")
    # gRPC core's server sends SETTINGS on accept: a client may read them
    # before it writes its preface, and that connection is HTTP/2 too
    check_eq(series(m, "sonde_connections_unsupported_total"), 0.0,
             "no gRPC connection taken for an unsupported protocol")

    spans = [s for s in agent.spans() if s.get("protocol") == "HTTP/2"]
    check_eq(sum(1 for s in spans if "rpc_system" not in s), 0,
             "every HTTP/2 span of this port is a gRPC one (no guessed method or route)")
    check_eq(sum(1 for s in spans if s.get("target") != "/demo.Echo/" + s.get("rpc_method", "?")), 0,
             "every span names a method the clients called")
    err = {}
    for s in spans:
        k = (s["kind"], s["rpc_method"], s["grpc_status"], s.get("error_type", ""))
        err[k] = err.get(k, 0) + 1
    check_eq(err, {
        ("server", "Unary", 0, ""): 4, ("server", "Unary", 5, ""): 2,
        ("server", "Unary", 13, "INTERNAL"): 1, ("server", "Unary", 4, "DEADLINE_EXCEEDED"): 1,
        ("server", "Stream", 0, ""): 2, ("server", "Stream", 5, ""): 1,
        ("client", "Unary", 0, ""): 4, ("client", "Unary", 5, "NOT_FOUND"): 2,
        ("client", "Unary", 13, "INTERNAL"): 1, ("client", "Unary", 4, "DEADLINE_EXCEEDED"): 1,
        ("client", "Stream", 0, ""): 2, ("client", "Stream", 5, "NOT_FOUND"): 1,
    }, "error.type per OTel RPC rules (server: INTERNAL, DEADLINE_EXCEEDED; client: any non-OK)")
    traced = [s for s in spans if s["kind"] == "server" and s["trace_id"] == TRACE]
    check_eq(len(traced), 1, "one server span in the incoming trace")
    if traced:
        check_eq((traced[0]["parent_span_id"], traced[0].get("remote_parent")), (PARENT, True),
                 "server span's parent is the traceparent's span (remote)")
    # OTLP, as the receiver decoded it
    def rpc_otlp():
        return [(ra, sp) for ra, sp in spans_of(rcv.records("/v1/traces"))
                if attrs(sp.get("attributes")).get("rpc.system") == "grpc"]
    wait_until("22 gRPC spans over OTLP", lambda: len(rpc_otlp()) >= 22, timeout=20, fatal=False)
    got = rpc_otlp()
    check_eq(len(got), 22, "OTLP: every gRPC span exported once (11 server, 11 client)")
    summary = {}
    for _, sp in got:
        a = attrs(sp["attributes"])
        k = (sp["kind"], sp["name"], a.get("rpc.service"), a.get("rpc.method"), a.get("rpc.grpc.status_code"),
             sp.get("status", {}).get("code", 0), a.get("error.type"))
        summary[k] = summary.get(k, 0) + 1
    check_eq(summary, {
        (2, "demo.Echo/Unary", "demo.Echo", "Unary", 0, 0, None): 4,
        (2, "demo.Echo/Unary", "demo.Echo", "Unary", 5, 0, None): 2,
        (2, "demo.Echo/Unary", "demo.Echo", "Unary", 13, 2, "INTERNAL"): 1,
        (2, "demo.Echo/Unary", "demo.Echo", "Unary", 4, 2, "DEADLINE_EXCEEDED"): 1,
        (2, "demo.Echo/Stream", "demo.Echo", "Stream", 0, 0, None): 2,
        (2, "demo.Echo/Stream", "demo.Echo", "Stream", 5, 0, None): 1,
        (3, "demo.Echo/Unary", "demo.Echo", "Unary", 0, 0, None): 4,
        (3, "demo.Echo/Unary", "demo.Echo", "Unary", 5, 2, "NOT_FOUND"): 2,
        (3, "demo.Echo/Unary", "demo.Echo", "Unary", 13, 2, "INTERNAL"): 1,
        (3, "demo.Echo/Unary", "demo.Echo", "Unary", 4, 2, "DEADLINE_EXCEEDED"): 1,
        (3, "demo.Echo/Stream", "demo.Echo", "Stream", 0, 0, None): 2,
        (3, "demo.Echo/Stream", "demo.Echo", "Stream", 5, 2, "NOT_FOUND"): 1,
    }, "OTLP: (kind, name, rpc.service, rpc.method, rpc.grpc.status_code, status, error.type)")
    traced = [sp for _, sp in got if sp["kind"] == 2 and base64.b64decode(sp["traceId"]).hex() == TRACE]
    check_eq([base64.b64decode(sp.get("parentSpanId", "")).hex() for sp in traced], [PARENT],
             "OTLP: the traced server span's parent is the incoming traceparent's")
    check_eq(agent.stop(), 0, "grpc agent stopped cleanly")
    rcv.stop()
    srv.terminate()
    old.wait(10)


def test_grpc_tls(tmp):
    print("== gRPC over TLS (python3-grpcio): unary + server streaming, statuses, traceparent,\n"
          "   concurrent channels, an old channel; SSLs over BIO pairs bound by content", flush=True)
    d = os.path.join(tmp, "grpc-tls")
    os.makedirs(d)
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=30)
    port = free_port()
    srv = spawn([PY, PEER, "server", str(port), "--tls", cert, key], stdout=subprocess.PIPE, text=True)
    check_eq(srv.stdout.readline().strip(), "ready", "gRPC TLS server started")
    # a TLS channel opened and used before the agent: its BIO pair was made
    # unseen, so its SSLs are never bound (counted unbound, nothing guessed)
    old = spawn([PY, PEER, "client", str(port), "Unary:old:4", "--tls", cert, "--hold"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    check_eq(old.stdout.readline().strip(), "held", "old TLS channel made its first call")
    agent = Agent("--port", str(port), name="grpc tls agent")

    plan = "Unary:hi:3,Unary:notfound:2,Unary:internal:1,Unary:deadline:1,Stream:hi:2,Stream:notfound:1"
    r = subprocess.run([PY, PEER, "client", str(port), plan, "--tls", cert],
                       capture_output=True, text=True, timeout=60)
    check_eq(r.stdout.split("\n"), ["DEADLINE_EXCEEDED 1", "INTERNAL 1", "NOT_FOUND 3", "OK 5", ""],
             f"TLS client saw the statuses it asked for ({r.stderr[-300:]})")
    tp = f"00-{TRACE}-{PARENT}-01"
    r = subprocess.run([PY, PEER, "client", str(port), "Unary:traced:1", "--tls", cert, "--traceparent", tp],
                       capture_output=True, text=True, timeout=60)
    check_eq(r.stdout.strip(), "OK 1", "traced TLS call answered")
    # three channels at once, each with its own mix: the server handles their
    # connections on the same threads, and each SSL must land on its socket
    mixes = {"a": "Unary:hi:5,Stream:hi:1", "b": "Unary:notfound:4,Stream:hi:2",
             "c": "Unary:internal:2,Stream:notfound:3"}
    conc = {k: spawn([PY, PEER, "client", str(port), v, "--tls", cert], stdout=subprocess.PIPE, text=True)
            for k, v in mixes.items()}
    outs = {k: p.communicate(timeout=60)[0].split("\n") for k, p in conc.items()}
    check_eq(outs, {"a": ["OK 6", ""], "b": ["NOT_FOUND 4", "OK 2", ""], "c": ["INTERNAL 2", "NOT_FOUND 3", ""]},
             "concurrent TLS channels answered")
    old.stdin.write("go\n")
    old.stdin.flush()
    check_eq(old.stdout.readline().strip(), "OK 4", "old TLS channel made 4 more calls after the agent started")

    want = {
        ("demo.Echo", "Unary", "0"): 9.0, ("demo.Echo", "Unary", "5"): 6.0,
        ("demo.Echo", "Unary", "13"): 3.0, ("demo.Echo", "Unary", "4"): 1.0,
        ("demo.Echo", "Stream", "0"): 5.0, ("demo.Echo", "Stream", "5"): 4.0,
    }
    m = settle(agent, lambda m: (rpc_counts(m, RPC_S), rpc_counts(m, RPC_C)), (want, want),
               "gRPC TLS series on /metrics")
    check_eq(rpc_counts(m, RPC_S), want, "TLS: rpc_server_duration_seconds counts per service/method/status "
             "(the old channel's calls not among them)")
    check_eq(rpc_counts(m, RPC_C), want, "TLS: rpc_client_duration_seconds counts per service/method/status")
    # 5 channels made after the agent, each bound once on either side
    check_eq(series(m, "sonde_tls_membio_bindings_total"), 10.0,
             "every new channel's SSL bound on both sides (5 connections x 2)")
    check_eq((series(m, "sonde_tls_membio_unmatched_total", reason="no_receive"),
              series(m, "sonde_tls_membio_unmatched_total", reason="mismatch")), (0.0, 0.0),
             "no ciphertext fed that the thread had not just received")
    check((series(m, "sonde_tls_unbound_calls_total") or 0) > 0,
          "the old channel's SSL calls counted unbound (its BIO pair predates the agent)")
    check_eq(series(m, "sonde_tls_untracked_socket_total"), 0.0, "no SSL bound to an untracked socket")
    check_eq(dropped(m, "desync"), 0.0, "no HTTP/2 connection lost sync")
    check_eq(dropped(m, "missed_start"), 0.0, "every bound connection decoded from its preface")
    check_eq(series(m, "sonde_parse_errors_total", protocol="http2"), 0.0, "no HTTP/2 parse errors")

    spans = [s for s in agent.spans() if s.get("protocol") == "HTTP/2"]
    check_eq(sorted({s.get("scheme") for s in spans}), ["https"], "every gRPC TLS span says https")
    check_eq(sum(1 for s in spans if s.get("target") != "/demo.Echo/" + s.get("rpc_method", "?")), 0,
             "every span names a method the clients called")
    err = {}
    for s in spans:
        k = (s["kind"], s["rpc_method"], s["grpc_status"], s.get("error_type", ""))
        err[k] = err.get(k, 0) + 1
    check_eq(err, {
        ("server", "Unary", 0, ""): 9, ("server", "Unary", 5, ""): 6,
        ("server", "Unary", 13, "INTERNAL"): 3, ("server", "Unary", 4, "DEADLINE_EXCEEDED"): 1,
        ("server", "Stream", 0, ""): 5, ("server", "Stream", 5, ""): 4,
        ("client", "Unary", 0, ""): 9, ("client", "Unary", 5, "NOT_FOUND"): 6,
        ("client", "Unary", 13, "INTERNAL"): 3, ("client", "Unary", 4, "DEADLINE_EXCEEDED"): 1,
        ("client", "Stream", 0, ""): 5, ("client", "Stream", 5, "NOT_FOUND"): 4,
    }, "TLS: error.type per OTel RPC rules (server: INTERNAL, DEADLINE_EXCEEDED; client: any non-OK)")
    # each concurrent channel's server spans are on its own connection: the
    # server side of connection (client port) has exactly that client's mix
    def mix(ss):
        out = {}
        for s in ss:
            out[(s["rpc_method"], s["grpc_status"])] = out.get((s["rpc_method"], s["grpc_status"]), 0) + 1
        return out
    for k, p in conc.items():
        cl = [s for s in spans if s["kind"] == "client" and s["pid"] == p.pid]
        ports = sorted({s["local_port"] for s in cl})
        sv = [s for s in spans if s["kind"] == "server" and s["peer_port"] in ports]
        check_eq((len(ports), mix(sv)), (1, mix(cl)),
                 f"channel {k}: server spans of its connection are its calls, no other's")
    traced = [s for s in spans if s["kind"] == "server" and s["trace_id"] == TRACE]
    check_eq([(s["parent_span_id"], s.get("remote_parent")) for s in traced], [(PARENT, True)],
             "TLS: one server span in the incoming trace, its parent the traceparent's span (remote)")
    check_eq(agent.stop(), 0, "grpc tls agent stopped cleanly")
    srv.terminate()
    old.wait(10)


def nginx_h2c(tmp):
    port = free_port()
    d = os.path.join(tmp, "nginx-h2c")
    os.makedirs(os.path.join(d, "www"))
    with open(os.path.join(d, "www", "index.html"), "w") as f:
        f.write("<html>sonde h2 page</html>\n")
    listen = f"        listen 127.0.0.1:{port} http2;"
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(dir=d, listen=listen, locations="", connections=256, nofile=576))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    spawn([nginx, "-c", conf, "-p", d, "-e", os.path.join(d, "error.log"), "-g", "daemon off;"],
          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until("nginx h2c up", lambda: curl_h2c(port, "/") == "200")
    return port


def curl_h2c(port, path, *extra):
    return subprocess.run(["curl", "-s", "--http2-prior-knowledge", *extra, "-o", "/dev/null",
                           "-w", "%{http_code}", f"http://127.0.0.1:{port}{path}"],
                          capture_output=True, text=True, timeout=10).stdout


def test_nginx_h2c(tmp):
    print("== nginx http2 (cleartext): curl --http2-prior-knowledge and h2load", flush=True)
    port = nginx_h2c(tmp)  # before the agent: its up-check connection is never seen
    agent = Agent("--port", str(port), name="nginx h2c agent")
    sent = {"/": 3, "/error": 2, "/users/1": 1, "/users/2": 1, "/users/3": 1, "/missing.html": 1}
    codes = {}
    for path, n in sent.items():
        for _ in range(n):
            c = curl_h2c(port, path, "-H", "x-sonde-test: repeated-value")
            codes[(path, c)] = codes.get((path, c), 0) + 1
    check_eq(codes, {("/", "200"): 3, ("/error", "500"): 2, ("/users/1", "200"): 1, ("/users/2", "200"): 1,
                     ("/users/3", "200"): 1, ("/missing.html", "404"): 1}, "curl got the statuses")
    # 200 requests, 10 in flight, one connection: every request after the
    # first names its headers from the HPACK dynamic table
    r = subprocess.run(["h2load", "-n", "200", "-c", "1", "-m", "10", "-H", "x-sonde-test: repeated-value",
                        f"http://127.0.0.1:{port}/users/42"], capture_output=True, text=True, timeout=60)
    check("200 succeeded" in r.stdout, f"h2load: 200 requests succeeded ({r.stdout[-400:]})")
    want_s = {("GET", "/", "200", ""): 3.0, ("GET", "/error", "500", "500"): 2.0,
              ("GET", "/users/{id}", "200", ""): 203.0, ("GET", "/missing.html", "404", ""): 1.0}
    want_c_curl = {("GET", "/", "200", ""): 3.0, ("GET", "/error", "500", "500"): 2.0,
                   ("GET", "/users/{id}", "200", ""): 3.0, ("GET", "/missing.html", "404", "404"): 1.0}
    want_c_h2load = {("GET", "/users/{id}", "200", ""): 200.0}
    m = settle(agent, lambda m: (http_counts(m, HTTP_S, port, "nginx"), http_counts(m, HTTP_C, port, "curl"),
                                 http_counts(m, HTTP_C, port, "h2load")),
               (want_s, want_c_curl, want_c_h2load), "nginx h2c series")
    check_eq(http_counts(m, HTTP_S, port, "nginx"), want_s, "nginx server spans per method/route/status")
    check_eq(http_counts(m, HTTP_C, port, "curl"), want_c_curl, "curl client spans per method/route/status")
    check_eq(http_counts(m, HTTP_C, port, "h2load"), want_c_h2load,
             "h2load: 200 multiplexed requests on one connection, each counted once")
    check_eq(dropped(m, "desync"), 0.0, "no connection lost sync")
    check_eq(dropped(m, "too_many_streams"), 0.0, "10 concurrent streams fit the table")
    check_eq(dropped(m, "unmatched"), 0.0, "no response without its request")
    check_eq(agent.stop(), 0, "nginx h2c agent stopped cleanly")
    spans = agent.spans()  # all written once the agent stopped
    check_eq(sorted({s.get("protocol") for s in spans}), ["HTTP/2"], "every span says HTTP/2")
    check_eq(len(spans), 209 + 209, "one span per request on each side")


def test_nghttpd(tmp):
    print("== nghttpd (nghttp2-server) driven by nghttp (streams on one connection) and curl",
          flush=True)
    port = free_port()
    docroot = os.path.join(tmp, "nghttpd")
    os.makedirs(docroot)
    for name in ("a.html", "b.html", "c.html"):
        with open(os.path.join(docroot, name), "w") as f:
            f.write(name * 20)
    spawn(["nghttpd", "--no-tls", "-d", docroot, "-a", "127.0.0.1", str(port)],
          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until("nghttpd up", lambda: curl_h2c(port, "/a.html") == "200")
    agent = Agent("--port", str(port), name="nghttpd agent")
    urls = [f"http://127.0.0.1:{port}/{p}" for p in ("a.html", "b.html", "c.html", "nope.html",
                                                       "a.html?again=1")]  # nghttp fetches a URL once
    r = subprocess.run(["nghttp", "-n", "-s", *urls], capture_output=True, text=True, timeout=30)
    check_eq(r.returncode, 0, f"nghttp fetched 5 URLs on one connection ({r.stderr[-300:]})")
    for _ in range(2):
        check_eq(curl_h2c(port, "/b.html"), "200", "curl /b.html")
    want_s = {("GET", "/a.html", "200", ""): 2.0, ("GET", "/b.html", "200", ""): 3.0,
              ("GET", "/c.html", "200", ""): 1.0, ("GET", "/nope.html", "404", ""): 1.0}
    want_nghttp = {("GET", "/a.html", "200", ""): 2.0, ("GET", "/b.html", "200", ""): 1.0,
                   ("GET", "/c.html", "200", ""): 1.0, ("GET", "/nope.html", "404", "404"): 1.0}
    m = settle(agent, lambda m: (http_counts(m, HTTP_S, port, "nghttpd"),
                                 http_counts(m, HTTP_C, port, "nghttp")),
               (want_s, want_nghttp), "nghttpd series")
    check_eq(http_counts(m, HTTP_S, port, "nghttpd"), want_s, "nghttpd server spans per route/status")
    check_eq(http_counts(m, HTTP_C, port, "nghttp"), want_nghttp, "nghttp client spans per route/status")
    check_eq(http_counts(m, HTTP_C, port, "curl"), {("GET", "/b.html", "200", ""): 2.0},
             "curl client spans")
    check_eq(dropped(m, "desync"), 0.0, "no connection lost sync")
    check_eq(agent.stop(), 0, "nghttpd agent stopped cleanly")


def test_h2c_upgrade(tmp):
    print("== h2c upgrade (lighttpd): curl --http2 and nghttp -u on cleartext, HTTP/1.1 101 then HTTP/2",
          flush=True)
    # nghttpd answers an Upgrade: h2c with HTTP/2 frames, no 101, and nginx
    # does not upgrade: lighttpd's mod_h2 does (server.h2c).
    port = free_port()
    d = os.path.join(tmp, "lighttpd-h2c")
    os.makedirs(os.path.join(d, "www", "users"))
    for name in ("a.html", "b.html", "users/1", "users/2"):
        with open(os.path.join(d, "www", name), "w") as f:
            f.write(name * 30)
    conf = os.path.join(d, "lighttpd.conf")
    with open(conf, "w") as f:
        f.write(f'server.document-root = "{d}/www"\nserver.bind = "127.0.0.1"\nserver.port = {port}\n'
                f'server.errorlog = "{d}/error.log"\n'
                'server.feature-flags = ("server.h2proto" => "enable", "server.h2c" => "enable")\n'
                'mimetype.assign = (".html" => "text/html", "" => "text/plain")\n')
    lighttpd = shutil.which("lighttpd") or "/usr/sbin/lighttpd"
    spawn([lighttpd, "-D", "-f", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def curl(*urls, extra=()):
        r = subprocess.run(["curl", "-s", "--http2", *extra, "-w", "%{http_code} %{http_version}\n",
                            *sum((["-o", "/dev/null", f"http://127.0.0.1:{port}{u}"] for u in urls), [])],
                           capture_output=True, text=True, timeout=10)
        return r.stdout.split("\n")[:-1]

    wait_until("lighttpd up", lambda: curl("/a.html") == ["200 2"])
    agent = Agent("--port", str(port), name="h2c agent")
    got = {}
    for path, n in (("/a.html", 3), ("/users/1", 1), ("/users/2", 1), ("/missing.html", 2)):
        for _ in range(n):
            for c in curl(path):
                got[(path, c)] = got.get((path, c), 0) + 1
    check_eq(got, {("/a.html", "200 2"): 3, ("/users/1", "200 2"): 1, ("/users/2", "200 2"): 1,
                   ("/missing.html", "404 2"): 2}, "curl --http2 upgraded every connection (HTTP/2 answers)")
    # two URLs, one connection: the first is the upgraded stream 1, the second stream 3
    check_eq(curl("/b.html", "/users/1"), ["200 2", "200 2"], "curl: two requests on one upgraded connection")
    # a traceparent in the HTTP/1.1 upgrade request: the server span of stream 1 is its child
    tp = f"00-{TRACE}-{PARENT}-01"
    check_eq(curl("/b.html", extra=("-H", f"traceparent: {tp}")), ["200 2"], "traced upgrade request")
    # nghttp -u: HTTP2-Settings carries SETTINGS_HEADER_TABLE_SIZE 65536; three
    # streams on one connection, the later two after the upgrade
    r = subprocess.run(["nghttp", "-n", "-u", "-c", "65536",
                        *[f"http://127.0.0.1:{port}{p}" for p in ("/a.html", "/b.html", "/missing.html")]],
                       capture_output=True, text=True, timeout=30)
    check_eq(r.returncode, 0, f"nghttp -u fetched 3 URLs over one upgraded connection ({r.stderr[-300:]})")

    want_s = {("GET", "/a.html", "200", ""): 4.0, ("GET", "/b.html", "200", ""): 3.0,
              ("GET", "/users/{id}", "200", ""): 3.0, ("GET", "/missing.html", "404", ""): 3.0}
    want_curl = {("GET", "/a.html", "200", ""): 3.0, ("GET", "/b.html", "200", ""): 2.0,
                 ("GET", "/users/{id}", "200", ""): 3.0, ("GET", "/missing.html", "404", "404"): 2.0}
    want_nghttp = {("GET", "/a.html", "200", ""): 1.0, ("GET", "/b.html", "200", ""): 1.0,
                   ("GET", "/missing.html", "404", "404"): 1.0}
    m = settle(agent, lambda m: (http_counts(m, HTTP_S, port, "lighttpd"), http_counts(m, HTTP_C, port, "curl"),
                                 http_counts(m, HTTP_C, port, "nghttp")),
               (want_s, want_curl, want_nghttp), "h2c series")
    check_eq(http_counts(m, HTTP_S, port, "lighttpd"), want_s,
             "lighttpd server spans per route/status (no 101 among them)")
    check_eq(http_counts(m, HTTP_C, port, "curl"), want_curl, "curl client spans per route/status")
    check_eq(http_counts(m, HTTP_C, port, "nghttp"), want_nghttp, "nghttp client spans per route/status")
    check_eq(dropped(m, "desync"), 0.0, "no upgraded connection lost sync (HTTP2-Settings table size followed)")
    check_eq((dropped(m, "unmatched"), dropped(m, "missed_start")), (0.0, 0.0),
             "every response had its request; every connection decoded from the upgrade")
    check_eq((series(m, "sonde_parse_errors_total", protocol="http1"),
              series(m, "sonde_parse_errors_total", protocol="http2")), (0.0, 0.0), "no parse errors")
    check_eq(agent.stop(), 0, "h2c agent stopped cleanly")
    spans = [s for s in agent.spans() if s.get("local_port" if s["kind"] == "server" else "peer_port") == port]
    check_eq(sorted({(s.get("protocol"), s.get("status")) for s in spans if s.get("status") == 101}), [],
             "no span for the 101 itself")
    check_eq(sorted({s.get("protocol") for s in spans}), ["HTTP/2"], "every span says HTTP/2")
    check_eq(len(spans), 13 * 2, "one span per request on each side")
    # stream 1 of each connection is the HTTP/1.1 request: its span names it
    # as the client asked (each single-URL curl is one connection)
    conns = {}
    for s in spans:
        if s["kind"] == "client":
            conns.setdefault((s["pid"], s["local_port"]), []).append(s["target"])
    firsts = sorted(v[0] for v in conns.values())
    check_eq(firsts, sorted(["/a.html"] * 3 + ["/users/1", "/users/2"] + ["/missing.html"] * 2 +
                            ["/b.html", "/b.html", "/a.html"]),
             "the first request of every connection (the upgraded stream 1) named as sent")
    traced = [s for s in spans if s["kind"] == "server" and s["trace_id"] == TRACE]
    check_eq([(s["target"], s["parent_span_id"], s.get("remote_parent")) for s in traced],
             [("/b.html", PARENT, True)], "stream 1's server span is a child of the upgrade request's traceparent")


def test_nginx_tls_mixed(tmp):
    print("== nginx over TLS, ALPN: HTTP/2 and HTTP/1.1 on one port (OpenSSL uprobes)", flush=True)
    port = free_port()
    d = os.path.join(tmp, "nginx-tls")
    os.makedirs(os.path.join(d, "www"))
    with open(os.path.join(d, "www", "index.html"), "w") as f:
        f.write("<html>sonde tls h2 page</html>\n")
    cert, key = make_cert(d)
    listen = (f"        listen 127.0.0.1:{port} ssl http2;\n"
              f"        ssl_certificate {cert};\n        ssl_certificate_key {key};")
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(dir=d, listen=listen, locations="", connections=256, nofile=576))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    spawn([nginx, "-c", conf, "-p", d, "-e", os.path.join(d, "error.log"), "-g", "daemon off;"],
          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def curl(ver, path):
        return subprocess.run(["curl", "-sk", ver, "-o", "/dev/null", "-w", "%{http_code} %{http_version}",
                               f"https://127.0.0.1:{port}{path}"], capture_output=True, text=True,
                              timeout=10).stdout

    wait_until("nginx tls up", lambda: curl("--http1.1", "/") == "200 1.1")
    agent = Agent("--port", str(port), name="nginx tls agent")
    got = {}
    for ver, path, n in (("--http2", "/users/7", 3), ("--http1.1", "/users/8", 2), ("--http2", "/error", 1),
                         ("--http1.1", "/", 1), ("--http2", "/", 2)):
        for _ in range(n):
            c = curl(ver, path)
            got[(path, c)] = got.get((path, c), 0) + 1
    check_eq(got, {("/users/7", "200 2"): 3, ("/users/8", "200 1.1"): 2, ("/error", "500 2"): 1,
                   ("/", "200 1.1"): 1, ("/", "200 2"): 2}, "curl negotiated h2 / http1.1 as asked")

    def by_proto(spans, kind):
        out = {}
        for s in spans:
            if s["kind"] == kind and s.get("local_port" if kind == "server" else "peer_port") == port:
                k = (s["protocol"], s["route"], s["status"], s.get("scheme"))
                out[k] = out.get(k, 0) + 1
        return out

    want = {("HTTP/2", "/users/{id}", 200, "https"): 3, ("HTTP/1.1", "/users/{id}", 200, "https"): 2,
            ("HTTP/2", "/error", 500, "https"): 1, ("HTTP/1.1", "/", 200, "https"): 1,
            ("HTTP/2", "/", 200, "https"): 2}
    wait_until("TLS spans", lambda: by_proto(agent.spans(), "server") == want and
               by_proto(agent.spans(), "client") == want, timeout=20, fatal=False)
    spans = agent.spans()
    check_eq(by_proto(spans, "server"), want, "nginx server spans per protocol version/route/status")
    check_eq(by_proto(spans, "client"), want, "curl client spans per protocol version/route/status")
    m = agent.metrics()
    check_eq(series(m, HTTP_S, http_request_method="GET", http_response_status_code="200",
                    http_route="/users/{id}", service_name="nginx", server_port=str(port), error_type=""),
             5.0, "HTTP/1.1 and HTTP/2 requests share one http_server series")
    check_eq(dropped(m, "desync"), 0.0, "no connection lost sync")
    check_eq(agent.stop(), 0, "nginx tls agent stopped cleanly")


def main():
    if os.geteuid() != 0:
        raise SystemExit("FAIL: the integration tests load BPF programs and must run as root")
    if subprocess.run([os.path.join(ROOT, "scripts", "otlp-receiver-deps.sh")]).returncode != 0:
        raise SystemExit("FAIL: cannot install the OTLP receiver's decoder (npm)")
    tmp = tempfile.mkdtemp(prefix="sonde-h2-")
    started = time.monotonic()
    test_grpc()
    test_grpc_tls(tmp)
    test_nginx_h2c(tmp)
    test_nghttpd(tmp)
    test_h2c_upgrade(tmp)
    test_nginx_tls_mixed(tmp)
    print(f"   ({time.monotonic() - started:.0f} s)", flush=True)
    finish("test_http2")


if __name__ == "__main__":
    main()
