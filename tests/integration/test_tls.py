"""Integration: HTTPS through sonde's OpenSSL uprobes. nginx (nginx-light,
started before the agent) serving TLS to curl (SSL_read/SSL_write), and
Python's http.server in ssl (SSL_read_ex/SSL_write_ex) started after the
agent against its own copy of libssl (found later by the exec hook / rescan),
driven by a urllib client. Exact span and /metrics counts per label set,
scheme https, no parse errors from ciphertext, and cleanup of the per-thread
state of a client killed inside SSL_read."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Agent, NginxTls, check, check_eq, exe_name, finish, free_port,  # noqa: E402
                     make_cert, series, spawn, wait_until)

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER_H = "http_server_request_duration_seconds_count"
CLIENT_H = "http_client_request_duration_seconds_count"


def system_libssl():
    """Path of the libssl.so.3 this (Python, ssl-importing) process maps."""
    import ssl  # noqa: F401  (maps libssl)
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()[-1]
            if os.path.basename(p).startswith("libssl.so"):
                return p
    raise SystemExit("FAIL: this Python does not map libssl")


def ssl_calls_tgids(agent):
    """tgids with an entry in the agent's ssl_calls map (key = pid_tgid)."""
    mid = agent.map_id("ssl_calls")
    if mid is None:
        return None
    out = subprocess.run(["bpftool", "-j", "map", "dump", "id", str(mid)],
                         capture_output=True, text=True, timeout=10).stdout
    tgids = set()
    for e in json.loads(out or "[]"):
        key = e.get("formatted", {}).get("key", e.get("key"))
        if isinstance(key, list):
            key = int.from_bytes(bytes(int(b, 16) for b in key), "little")
        tgids.add(int(key) >> 32)
    return tgids


def spans_of(agent, **want):
    return [s for s in agent.spans() if all(s.get(k) == v for k, v in want.items())]


def by_route_status(spans):
    out = {}
    for s in spans:
        k = (s["route"], s["status"])
        out[k] = out.get(k, 0) + 1
    return out


def main():
    if os.geteuid() != 0:
        raise SystemExit("FAIL: the integration tests load BPF programs and must run as root")
    libssl = system_libssl()

    nginx = NginxTls()  # before the agents: found by the start-up scan of /proc/*/maps
    py_port = free_port()
    print("== starting sonde (one agent per server port)", flush=True)
    ag_ng = Agent("--port", str(nginx.port), name="nginx agent")
    ag_py = Agent("--port", str(py_port), name="python agent")
    print(f"   nginx :{nginx.port} (pid {nginx.proc.pid})  python :{py_port}  libssl {libssl}", flush=True)

    m = ag_ng.metrics()
    check_eq(series(m, "sonde_tls_probe_info", library=libssl, linkage="shared"), 1.0,
             "system libssl probed at start-up (nginx maps it)")

    # ---- nginx + curl: one connection, 10 requests ----
    print("== nginx over TLS, curl client", flush=True)
    ng = nginx.url
    urls = ([f"{ng}/"] * 4 + [f"{ng}/missing"] * 2 + [f"{ng}/error"] +
            [f"{ng}/users/{i}" for i in (17, 23, 42)])
    out = subprocess.run(["curl", "-sk", "--http1.1", "-w", "%{http_code}\n",
                          *[a for u in urls for a in ("-o", "/dev/null", u)]],
                         capture_output=True, text=True, timeout=30).stdout.split("\n")
    codes = [l.split()[0] for l in out if l]
    check_eq(codes, ["200"] * 4 + ["404"] * 2 + ["500"] + ["200"] * 3, "curl statuses")

    # (route, status, requests, error_type of the server series, of the client series)
    rows = [("/", 200, 4, "", ""), ("/missing", 404, 2, "", "404"), ("/error", 500, 1, "500", "500"),
            ("/users/{id}", 200, 3, "", "")]
    want = {(route, status): n for route, status, n, _, _ in rows}
    wait_until("20 nginx/curl spans", lambda: len(spans_of(ag_ng, scheme="https")) >= 20, fatal=False)
    time.sleep(0.3)  # nothing more may arrive
    srv = spans_of(ag_ng, kind="server", service="nginx")
    cli = spans_of(ag_ng, kind="client", service="curl")
    check_eq(len(srv), 10, "nginx server spans")
    check_eq(len(cli), 10, "curl client spans")
    check_eq(len(ag_ng.spans()), 20, "no other spans on the nginx port")
    check_eq(by_route_status(srv), want, "nginx server spans by route and status")
    check_eq(by_route_status(cli), want, "curl client spans by route and status")
    check_eq(sorted({s.get("scheme") for s in srv + cli}), ["https"], "every span scheme https")
    check_eq(sorted({s["local_port"] for s in srv}), [nginx.port], "server spans on nginx's port")
    check_eq(sorted({s["peer_port"] for s in cli}), [nginx.port], "client spans to nginx's port")
    check_eq(sorted({s["pid"] for s in cli}) != [], True, "client pid recorded")

    m = ag_ng.metrics()
    for route, status, n, srv_err, cli_err in rows:
        check_eq(series(m, SERVER_H, http_request_method="GET", http_response_status_code=str(status),
                        http_route=route, service_name="nginx", server_port=str(nginx.port), error_type=srv_err),
                 float(n), f"nginx {route} {status} in /metrics")
        check_eq(series(m, CLIENT_H, http_request_method="GET", http_response_status_code=str(status),
                        http_route=route, service_name="curl", server_address="127.0.0.1",
                        server_port=str(nginx.port), error_type=cli_err),
                 float(n), f"curl {route} {status} in /metrics")
    check_eq(series(m, "sonde_parse_errors_total", protocol="http1"), 0.0,
             "no HTTP parse errors (ciphertext not parsed)")
    check_eq(series(m, "sonde_connections_unsupported_total"), 0.0,
             "no connection given up as not HTTP (ciphertext never reached the parser)")
    check_eq(series(m, "sonde_http_unmatched_responses_total"), 0.0, "no unmatched responses")
    check_eq(series(m, "sonde_tls_drops_total"), 0.0, "no TLS ring drops")
    check_eq(series(m, "sonde_tls_read_failures_total"), 0.0, "no plaintext read failures")

    check_eq(series(m, "sonde_probe_info", hook="ssl_read_write", mode="uprobe"), 1.0,
             "sonde_probe_info: OpenSSL uprobes")
    check_eq(series(m, "sonde_probe_info", hook="tls:sched_process_exec", mode="tracepoint"), 1.0,
             "sonde_probe_info: exec hook")

    # An incoming traceparent inside TLS is honoured (parsed from the plaintext).
    tp_trace, tp_parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    r = subprocess.run(["curl", "-sk", "--http1.1", "-o", "/dev/null", "-w", "%{http_code}",
                        "-H", f"traceparent: 00-{tp_trace}-{tp_parent}-01", f"{ng}/tp"],
                       capture_output=True, text=True, timeout=30)
    check_eq(r.stdout, "404", "curl with traceparent")
    wait_until("nginx span of /tp", lambda: spans_of(ag_ng, kind="server", route="/tp"), fatal=False)
    tsrv = spans_of(ag_ng, kind="server", route="/tp")
    check_eq([(s.get("trace_id"), s.get("parent_span_id"), s.get("scheme")) for s in tsrv],
             [(tp_trace, tp_parent, "https")], "nginx span is a child of the traceparent sent over TLS")

    # ---- Python server after the agent, on its own copy of libssl ----
    print("== python http.server in ssl (started after the agent, private libssl copy)", flush=True)
    libdir = tempfile.mkdtemp(prefix="sonde-tls-lib-")
    mylib = os.path.join(libdir, os.path.basename(libssl))
    shutil.copy(libssl, mylib)
    cert, key = make_cert(libdir)
    env = dict(os.environ, LD_LIBRARY_PATH=libdir)
    pysrv = spawn([sys.executable, os.path.join(HERE, "tlsserver.py"), str(py_port), cert, key],
                  stdout=subprocess.PIPE, text=True, env=env)
    check_eq(pysrv.stdout.readline().strip(), "ready", "python TLS server started")
    with open(f"/proc/{pysrv.pid}/maps") as f:
        check(mylib in f.read(), f"python server maps the private copy {mylib}")
    got = wait_until("private libssl probed", lambda: series(ag_py.metrics(), "sonde_tls_probe_info",
                                                            library=mylib, linkage="shared"),
                     timeout=20, fatal=False)
    check_eq(got, 1.0, "private libssl found after the agent started (exec hook / rescan)")
    t_found = [r for r in ag_py.log_records() if r.get("@message") == "OpenSSL probed"
               and r.get("path") == mylib]
    check_eq(len(t_found), 1, "one 'OpenSSL probed' log record for the private copy")

    paths = ["/py/1", "/py/2", "/missing/3"]
    r = subprocess.run([sys.executable, os.path.join(HERE, "tlsclient.py"), str(py_port), *paths],
                       capture_output=True, text=True, timeout=60)
    check_eq(r.stdout.split(), ["200", "200", "404"], "urllib statuses")
    py_svc = exe_name(pysrv.pid)
    prows = [("/py/{id}", 200, 2, "", ""), ("/missing/{id}", 404, 1, "", "404")]
    pwant = {(route, status): n for route, status, n, _, _ in prows}
    wait_until("6 python spans", lambda: len(spans_of(ag_py, scheme="https")) >= 6, fatal=False)
    time.sleep(0.3)
    psrv = spans_of(ag_py, kind="server", pid=pysrv.pid)
    pcli = spans_of(ag_py, kind="client")
    check_eq(len(psrv), 3, "python server spans")
    check_eq(len(pcli), 3, "urllib client spans")
    check_eq(by_route_status(psrv), pwant, "python server spans by route and status")
    check_eq(by_route_status(pcli), pwant, "urllib client spans by route and status")
    check_eq(sorted({s.get("scheme") for s in psrv + pcli}), ["https"], "python spans scheme https")
    check_eq(sum(1 for s in pcli if s.get("incomplete")), 0, "client responses complete")
    m = ag_py.metrics()
    for route, status, n, srv_err, cli_err in prows:
        check_eq(series(m, SERVER_H, http_request_method="GET", http_response_status_code=str(status),
                        http_route=route, service_name=py_svc, server_port=str(py_port), error_type=srv_err),
                 float(n), f"python server {route} {status} in /metrics")
        check_eq(series(m, CLIENT_H, http_request_method="GET", http_response_status_code=str(status),
                        http_route=route, service_name=py_svc, server_address="127.0.0.1",
                        server_port=str(py_port), error_type=cli_err),
                 float(n), f"urllib client {route} {status} in /metrics")
    check_eq(series(m, "sonde_parse_errors_total", protocol="http1"), 0.0, "python: no parse errors")
    check_eq(series(m, "sonde_connections_unsupported_total"), 0.0, "python: no unsupported conns")

    # ---- an executable with OpenSSL linked in statically ----
    print("== static OpenSSL client (SSL_write found in the executable's symbols)", flush=True)
    exe = os.path.join(libdir, "tlsstatic")
    b = subprocess.run(["gcc", "-O1", "-o", exe, os.path.join(HERE, "tls_static_client.c"),
                        "-Wl,-Bstatic", "-lssl", "-lcrypto", "-Wl,-Bdynamic", "-lpthread", "-ldl"],
                       capture_output=True, text=True, timeout=120)
    check_eq(b.returncode, 0, f"static client builds (libssl-dev's libssl.a): {b.stderr[-300:]}")
    if b.returncode == 0:
        st = spawn([exe, str(py_port), "/static/1", "/static/2", "/missing/9"],
                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        got = wait_until("static executable probed", lambda: series(
            ag_py.metrics(), "sonde_tls_probe_info", library=exe, linkage="static"), timeout=20, fatal=False)
        check_eq(got, 1.0, "static executable found by its SSL_write symbol after exec")
        out, _ = st.communicate("go\n", timeout=60)
        check_eq(out.split(), ["200", "200", "404"], "static client statuses")
        srows = [("/static/{id}", 200, 2, ""), ("/missing/{id}", 404, 1, "404")]  # client error_type last
        swant = {(route, status): n for route, status, n, _ in srows}
        wait_until("6 static-client spans", lambda: len(spans_of(ag_py, scheme="https")) >= 12, fatal=False)
        time.sleep(0.3)
        scli = spans_of(ag_py, kind="client", service="tlsstatic")
        ssrv = [s for s in spans_of(ag_py, kind="server", pid=pysrv.pid) if s["route"] in
                ("/static/{id}", "/missing/{id}") and s["target"] != "/missing/3"]
        check_eq(by_route_status(scli), swant, "static client spans by route and status")
        check_eq(by_route_status(ssrv), swant, "python server spans of the static client")
        check_eq(sorted({s.get("scheme") for s in scli}), ["https"], "static client spans scheme https")
        m = ag_py.metrics()
        for route, status, n, cli_err in srows:
            check_eq(series(m, CLIENT_H, http_request_method="GET", http_response_status_code=str(status),
                            http_route=route, service_name="tlsstatic", server_address="127.0.0.1",
                            server_port=str(py_port), error_type=cli_err),
                     float(n), f"static client {route} {status} in /metrics")
        check_eq(series(m, "sonde_parse_errors_total", protocol="http1"), 0.0, "static: no parse errors")

    # ---- a client killed inside SSL_read leaves no state behind ----
    print("== client killed inside SSL_read", flush=True)
    hang_port = free_port()
    hang = spawn([sys.executable, os.path.join(HERE, "tlsserver.py"), str(hang_port), cert, key, "hang"],
                 stdout=subprocess.PIPE, text=True)
    check_eq(hang.stdout.readline().strip(), "ready", "hanging TLS server started")
    stuck = spawn([sys.executable, os.path.join(HERE, "tlsclient.py"), "--blocking", str(hang_port), "/never"],
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    inside = wait_until("client blocked inside SSL_read",
                        lambda: stuck.pid in (ssl_calls_tgids(ag_py) or ()), timeout=15, fatal=False)
    check(bool(inside), "in-progress SSL call of the client recorded")
    before = series(ag_py.metrics(), "sonde_tls_state_collected_total") or 0.0
    stuck.send_signal(signal.SIGKILL)
    stuck.wait(5)

    def collected():
        tg = ssl_calls_tgids(ag_py)
        return tg is not None and stuck.pid not in tg
    gone = wait_until("entry of the killed client collected", collected, timeout=15, fatal=False)
    check(bool(gone), "ssl_calls entry of the killed client removed")
    after = series(ag_py.metrics(), "sonde_tls_state_collected_total") or 0.0
    check(after - before >= 1, f"sonde_tls_state_collected_total grew ({before} -> {after})")

    # ---- --no-tls: nothing of the above ----
    print("== --no-tls", flush=True)
    ag_off = Agent("--no-tls", "--port", str(nginx.port), name="--no-tls agent")
    r = subprocess.run(["curl", "-sk", "--http1.1", "-o", "/dev/null", "-w", "%{http_code}", f"{ng}/users/5"],
                       capture_output=True, text=True, timeout=30)
    check_eq(r.stdout, "200", "curl with --no-tls agent")
    time.sleep(0.5)
    m = ag_off.metrics()
    check_eq([k for k in m if k[0] == "sonde_tls_probe_info"], [], "--no-tls: no sonde_tls_probe_info")
    check_eq(ag_off.spans(), [], "--no-tls: no spans from the HTTPS request")
    check_eq(series(m, "sonde_parse_errors_total", protocol="http1"), 0.0, "--no-tls: ciphertext not parsed")
    check_eq(ag_off.stop(), 0, "--no-tls agent exit status")

    print("== PostgreSQL over TLS: covered by test_db.py (TLS plaintext + libpq uprobe joined)", flush=True)
    check_eq(ag_ng.stop(), 0, "nginx agent exit status")
    check_eq(ag_py.stop(), 0, "python agent exit status")
    finish("test_tls")


if __name__ == "__main__":
    main()
