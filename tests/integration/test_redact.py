"""Integration: secrets in request targets never leave the agent (issue #15
item 3). The real agent traces a real Python http.server driven by curl
(query strings with passwords, keys, signatures, percent-encoded key names,
an extra key from SONDE_URL_QUERY_KEYS) and by a raw socket sending an
absolute-form request with user:password, and exports to the Node OTLP
receiver (gzip). No secret value may appear in --print spans, the agent's
logs (debug level), /metrics or the decoded OTLP traces and metrics (curl's
process.command_line included); the exact redacted targets, url.query /
url.full and command line are asserted. Then
--url-query keep shows the same request unredacted (so the checks above can
fail), and --url-query drop removes the query."""
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SONDE, Agent, check, check_eq, finish, wait_until  # noqa: E402
from test_otlp import Receiver, attrs, spans_of, start_agent, start_server  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# Each secret is a distinct word so a leak names its source.
LOGIN = "/login?user=bob&password=S3CRETPW1&api_key=K3YVAL2"
LOGIN_RED = "/login?user=bob&password=REDACTED&api_key=REDACTED"
HELLO = "/hello?Pass%77ord=S3CRETPW3&X-Amz-Signature=S1GVAL4&OTP=OTPVAL5&q=keepme&code="
HELLO_RED = "/hello?Pass%77ord=REDACTED&X-Amz-Signature=REDACTED&OTP=REDACTED&q=keepme&code="
SECRETS = ["S3CRETPW1", "K3YVAL2", "S3CRETPW3", "S1GVAL4", "OTPVAL5", "ALICEUSR8", "HUNT3RPW6", "T0KVAL7"]


def proxy_target(port):
    """Absolute-form, as a client sends it to a forward proxy."""
    return f"http://ALICEUSR8:HUNT3RPW6@127.0.0.1:{port}/items/7?token=T0KVAL7&page=2"


def proxy_target_red(port):
    return f"http://REDACTED:REDACTED@127.0.0.1:{port}/items/7?token=REDACTED&page=2"


def curl(port, paths):
    out = subprocess.run(["curl", "-s", "-w", "%{http_code}\n",
                          *[a for p in paths for a in ("-o", "/dev/null", f"http://127.0.0.1:{port}{p}")]],
                         capture_output=True, text=True, timeout=60).stdout.split()
    return out


def raw_get(port, target):
    """One request on its own connection from this process; returns the status."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1])


def http_spans(agent, port):
    """(kind, comm, target, route, status) of this port's HTTP spans on stdout."""
    return sorted((s["kind"], s["comm"], s["target"], s["route"], s["status"]) for s in agent.spans()
                  if s.get("method") == "GET" and port in (s.get("local_port"), s.get("peer_port")))


def leaks(text, secrets=SECRETS):
    return [w for w in secrets if w in text]


def main():
    if os.geteuid() != 0:
        raise SystemExit("FAIL: the integration tests load BPF programs and must run as root")
    if subprocess.run([os.path.join(ROOT, "scripts", "otlp-receiver-deps.sh")]).returncode != 0:
        raise SystemExit("FAIL: cannot install the OTLP receiver's decoder (npm)")

    print("== bad values exit 2", flush=True)
    for args, env in [(["--url-query", "bogus"], {}), (["--url-query-keys", "a,,b"], {}),
                      ([], {"SONDE_URL_QUERY": "Keep"}), ([], {"SONDE_URL_QUERY_KEYS": "a=b"})]:
        r = subprocess.run([SONDE, *args], capture_output=True, text=True, timeout=10,
                           env={**os.environ, **env})
        check_eq(r.returncode, 2, f"exit status for {args or env}")
        check("sonde: invalid" in r.stderr and "url-query" in r.stderr.lower().replace("_", "-"),
              f"clear message for {args or env}: {r.stderr.strip()!r}")

    # ---- default: redact, one extra key from the environment, OTLP gzip ----
    print("== redact (default), OTLP gzip, SONDE_URL_QUERY_KEYS=otp", flush=True)
    rcv = Receiver()
    srv, port = start_server()
    agent = start_agent({"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.url, "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
                            "OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_METRIC_EXPORT_INTERVAL": "500",
                            "SONDE_URL_QUERY_KEYS": "otp"},
                           "--port", str(port), "--no-host-metrics", "--log-level", "debug",
                           print_spans=True)
    check_eq(curl(port, [LOGIN, HELLO]), ["404", "200"], "curl statuses")
    check_eq(raw_get(port, proxy_target(port)), 404, "absolute-form request status")
    got = wait_until("6 spans on stdout", lambda: len(http_spans(agent, port)) >= 6 and http_spans(agent, port),
                     fatal=False) or http_spans(agent, port)
    check_eq(sorted((k, t, r, st) for k, _, t, r, st in got),
             sorted([("server", LOGIN_RED, "/login", 404), ("client", LOGIN_RED, "/login", 404),
                     ("server", HELLO_RED, "/hello", 200), ("client", HELLO_RED, "/hello", 200),
                     ("server", proxy_target_red(port), "/items/{id}", 404),
                     ("client", proxy_target_red(port), "/items/{id}", 404)]),
             "--print spans: exact redacted targets and routes")
    check_eq(sorted(t for k, c, t, _, _ in got if c == "curl"), sorted([LOGIN_RED, HELLO_RED]),
             "curl's client spans")

    def otlp_http():
        out = []
        for ra, sp in spans_of(rcv.records("/v1/traces")):
            a = attrs(sp.get("attributes"))
            if a.get("server.port") == port:
                out.append((sp.get("kind"), sp["name"], a.get("url.path"), a.get("url.query"), a.get("url.full")))
        return sorted(out, key=repr)
    ospans = wait_until("6 OTLP spans", lambda: len(otlp_http()) >= 6 and otlp_http(), fatal=False) or otlp_http()
    base = f"http://127.0.0.1:{port}"
    check_eq(ospans, sorted([
        (2, "GET /login", "/login", LOGIN_RED.split("?", 1)[1], None),
        (3, "GET /login", None, None, base + LOGIN_RED),
        (2, "GET /hello", "/hello", HELLO_RED.split("?", 1)[1], None),
        (3, "GET /hello", None, None, base + HELLO_RED),
        (2, "GET /items/{id}", proxy_target_red(port).split("?", 1)[0], "token=REDACTED&page=2", None),
        (3, "GET /items/{id}", None, None, proxy_target_red(port)),
    ], key=repr), "OTLP: span names, url.path, url.query (server), url.full (client)")
    # the client's own command line holds the URLs: process.command_line
    # (a resource attribute) gets the same rule, argument by argument
    cmdlines = {ra.get("process.command_line") for ra, _ in spans_of(rcv.records("/v1/traces"))
                if ra.get("service.name") == "curl"}
    check_eq(cmdlines, {f"curl -s -w %{{http_code}}\n -o /dev/null {base}{LOGIN_RED} -o /dev/null {base}{HELLO_RED}"},
             "OTLP: curl's process.command_line redacted")
    # metrics exported at least once after the requests
    wait_until("an OTLP metrics export", lambda: any(r.get("status") == 200 for r in rcv.records("/v1/metrics")),
               fatal=False)
    prom = agent.metrics_text()
    check('http_route="/login"' in prom, "/metrics has the /login series")
    trecs = rcv.records("/v1/traces")
    check(trecs and all(r["headers"].get("content-encoding") == "gzip" for r in trecs), "OTLP bodies were gzip")
    with open(rcv.out) as f:
        otlp_text = f.read()
    stopped = agent.stop()
    check_eq(stopped, 0, "agent exit status")
    with open(agent.spans_path) as f:
        spans_text = f.read()
    check_eq(leaks(spans_text), [], "secrets in --print spans")
    check_eq(leaks(agent.log()), [], "secrets in the agent's logs")
    check_eq(leaks(prom), [], "secrets on /metrics")
    check_eq(leaks(otlp_text), [], "secrets in the decoded OTLP traces and metrics")
    check(len(agent.log().splitlines()) > 5, "the agent logged (debug level)")

    # ---- keep: the same requests show their values, userinfo still redacted ----
    print("== --url-query keep", flush=True)
    agent = Agent("--port", str(port), "--no-host-metrics", "--url-query", "keep", name="keep agent")
    check_eq(curl(port, [LOGIN]), ["404"], "curl status (keep)")
    check_eq(raw_get(port, proxy_target(port)), 404, "absolute-form status (keep)")
    got = wait_until("4 spans (keep)", lambda: len(http_spans(agent, port)) >= 4 and http_spans(agent, port),
                     fatal=False) or http_spans(agent, port)
    keep_proxy = f"http://REDACTED:REDACTED@127.0.0.1:{port}/items/7?token=T0KVAL7&page=2"
    check_eq(sorted((k, t) for k, _, t, _, _ in got),
             sorted([("server", LOGIN), ("client", LOGIN), ("server", keep_proxy), ("client", keep_proxy)]),
             "keep: targets as sent, userinfo redacted")
    agent.stop()

    # ---- drop ----
    print("== SONDE_URL_QUERY=drop", flush=True)
    agent = start_agent({"SONDE_URL_QUERY": "drop"}, "--port", str(port), "--no-host-metrics",
                           name="drop agent", print_spans=True)
    check_eq(curl(port, [LOGIN, HELLO]), ["404", "200"], "curl statuses (drop)")
    got = wait_until("4 spans (drop)", lambda: len(http_spans(agent, port)) >= 4 and http_spans(agent, port),
                     fatal=False) or http_spans(agent, port)
    check_eq(sorted((k, t) for k, _, t, _, _ in got),
             sorted([("server", "/login"), ("client", "/login"), ("server", "/hello"), ("client", "/hello")]),
             "drop: no query")
    agent.stop()
    with open(agent.spans_path) as f:
        check_eq(leaks(f.read()), [], "drop: secrets in --print spans")

    srv.terminate()
    rcv.stop()
    finish("test_redact")


if __name__ == "__main__":
    main()
