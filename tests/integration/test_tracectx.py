"""Integration: W3C trace context across three unmodified Python programs
(this test's http.client -> service A, a thread-per-request http.server
that calls service B with http.client -> service B, an http.server on
127.0.0.1 and one on ::1, tracechain.py), with sonde's real BPF programs
injecting traceparent through sockops + sk_msg. Asserts exact span counts,
parent/child links, the headers B and A actually received, skip counters
(own header, split request, pipelined), an invalid incoming header,
X-Request-ID recorded and Authorization never, error_type, --no-inject, and
injection to a port learnt from traffic (limited to A with --pid)."""
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Agent, check, check_eq, finish, free_port, series, spawn, wait_until  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CHAIN = os.path.join(HERE, "tracechain.py")
KACLIENT = os.path.join(HERE, "kaclient.py")
OWN_TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"  # tracechain.py /fwd
CLIENT_TP = "00-11112222333344445555666677778888-aaaabbbbccccdddd-01"
BAD_TP = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"  # uppercase: invalid


def start(args):
    p = spawn([sys.executable, CHAIN, *map(str, args)], stdout=subprocess.PIPE, text=True)
    check_eq(p.stdout.readline().strip(), "ready", f"{args[0]} :{args[1]} started")
    return p


def read_log(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def get(port, path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


class Chain:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sonde-tracectx-")
        self.alog = os.path.join(self.dir, "a.jsonl")
        self.blog = os.path.join(self.dir, "b.jsonl")
        self.b4, self.b6, self.a = free_port(), free_port(), free_port()
        self.pb4 = start(["b", self.b4, "127.0.0.1", self.blog])
        self.pb6 = start(["b", self.b6, "::1", self.blog])
        self.pa = start(["a", self.a, self.b4, self.b6, self.alog])
        self.ports = {self.a, self.b4, self.b6}

    def received(self, log, path):
        """traceparent values of the one request path the service got."""
        got = [e for e in read_log(log) if e["path"] == path]
        check_eq(len(got), 1, f"{path} reached {os.path.basename(log)[0]} once")
        return got[0]["traceparent"] if got else None


def by_role(spans, chain, me):
    """{(role, target): [spans]} for the four roles of a chain."""
    out = {}
    for s in spans:
        if s["local_port"] not in chain.ports and s["peer_port"] not in chain.ports:
            continue
        if s["pid"] == me and s["kind"] == "client" and s["peer_port"] == chain.a:
            role = "client"
        elif s["pid"] == chain.pa.pid and s["kind"] == "server":
            role = "a_server"
        elif s["pid"] == chain.pa.pid and s["kind"] == "client":
            role = "a_client"
        elif s["pid"] in (chain.pb4.pid, chain.pb6.pid) and s["kind"] == "server":
            role = "b_server"
        else:
            role = "other"
        out.setdefault((role, s["target"]), []).append(s)
    return out


def one(roles, role, target):
    got = roles.get((role, target), [])
    check_eq(len(got), 1, f"one {role} span for {target}")
    return got[0] if got else {"trace_id": "?", "span_id": "?", "parent_span_id": "?"}


def tp_of(s):
    return f"00-{s['trace_id']}-{s['span_id']}-{s['trace_flags']}"


def check_linked(chain, roles, path, b_path=None, client_injected=True):
    """The whole chain of one request is one trace with the expected parents."""
    b_path = b_path or path
    c, asrv = one(roles, "client", path), one(roles, "a_server", path)
    acli, bsrv = one(roles, "a_client", b_path), one(roles, "b_server", b_path)
    trace = asrv["trace_id"]
    for s, name in ((acli, "A client"), (bsrv, "B server")):
        check_eq(s["trace_id"], trace, f"{path}: {name} in A's trace")
    check_eq(acli["parent_span_id"], asrv["span_id"], f"{path}: A client is a child of A server")
    check_eq(bsrv["parent_span_id"], acli["span_id"], f"{path}: B server is a child of A client")
    check_eq(bsrv.get("remote_parent"), True, f"{path}: B server has a remote parent")
    check_eq(chain.received(chain.blog, b_path), [tp_of(acli)],
             f"{path}: B got exactly one traceparent, A client's ids")
    if client_injected:
        check_eq(c["trace_id"], trace, f"{path}: client span in the same trace")
        check_eq(asrv["parent_span_id"], c["span_id"], f"{path}: A server is a child of the client")
        check_eq(chain.received(chain.alog, path), [tp_of(c)],
                 f"{path}: A got exactly one traceparent, the client span's ids")
    ids = {c["span_id"], asrv["span_id"], acli["span_id"], bsrv["span_id"]}
    check_eq(len(ids), 4, f"{path}: four distinct span ids")
    return c, asrv, acli, bsrv


def main():
    if os.geteuid() != 0:
        raise SystemExit("FAIL: the integration tests load BPF programs and must run as root")
    me = os.getpid()
    chain = Chain()
    print(f"== A :{chain.a} -> B :{chain.b4} (127.0.0.1), :{chain.b6} (::1)", flush=True)
    # --no-inject-learn: this test must not touch other programs' requests
    # on this shared host; the chain's ports are given explicitly.
    agent = Agent("--inject-port", str(chain.a), "--inject-port", str(chain.b4),
                  "--inject-port", str(chain.b6), "--no-inject-learn")
    m = agent.metrics()
    check_eq(series(m, "sonde_probe_info", hook="sockops", mode="cgroup"), 1.0, "sockops attached")
    check_eq(series(m, "sonde_probe_info", hook="sk_msg", mode="sockhash"), 1.0, "sk_msg attached")

    print("== requests", flush=True)
    check_eq(get(chain.a, "/chain"), 200, "/chain status")
    check_eq(get(chain.a, "/v6chain"), 200, "/v6chain status")
    check_eq(get(chain.a, "/keep", {"traceparent": CLIENT_TP, "tracestate": "vendor=x"}), 200,
             "/keep status")
    check_eq(get(chain.a, "/invalid", {"traceparent": BAD_TP}), 200, "/invalid status")
    check_eq(get(chain.a, "/ids", {"X-Request-ID": "req-123", "Authorization": "Bearer s3cret",
                                   "Cookie": "session=s3cret"}), 200, "/ids status")
    check_eq(get(chain.a, "/boom"), 500, "/boom status (B answers 500)")
    check_eq(get(chain.a, "/fwd"), 200, "/fwd status")
    check_eq(get(chain.a, "/split"), 200, "/split status")
    check_eq(get(chain.a, "/pipe"), 200, "/pipe status")
    # 8 chains of 4 spans; /pipe: A client and B server twice
    want = 8 * 4 + 6

    def enough():
        roles = by_role(agent.spans(), chain, me)
        return roles if sum(len(v) for v in roles.values()) >= want else None
    wait_until(f"{want} spans", enough, timeout=10, fatal=False)
    time.sleep(0.3)  # nothing more may arrive
    roles = by_role(agent.spans(), chain, me)
    check_eq(sum(len(v) for v in roles.values()), want, "exact span count")
    check_eq(roles.get(("other", "/chain")), None, "no span of an unexpected role")

    print("== links", flush=True)
    check_linked(chain, roles, "/chain")
    check_linked(chain, roles, "/v6chain")
    bsrv6 = one(roles, "b_server", "/v6chain")
    check_eq(bsrv6["local_addr"], "::1", "/v6chain: B server on ::1 (IPv6 injection)")

    # A client request that carries its own traceparent keeps its trace.
    c, asrv, acli, bsrv = check_linked(chain, roles, "/keep", client_injected=False)
    check_eq(chain.received(chain.alog, "/keep"), [CLIENT_TP], "/keep: A got only the client's header")
    check_eq(asrv["trace_id"], CLIENT_TP[3:35], "/keep: A server in the client's trace")
    check_eq(asrv["parent_span_id"], CLIENT_TP[36:52], "/keep: A server's parent is the header's")
    check_eq(asrv.get("remote_parent"), True, "/keep: remote parent")
    check_eq(asrv.get("tracestate"), "vendor=x", "/keep: tracestate kept")
    check_eq(c["trace_id"], CLIENT_TP[3:35], "/keep: client span keeps its own trace id")
    check_eq(c["parent_span_id"], CLIENT_TP[36:52], "/keep: client span's parent is its header's")

    # An invalid incoming header: ignored (fresh trace), counted, not doubled.
    c, asrv, acli, bsrv = check_linked(chain, roles, "/invalid", client_injected=False)
    check_eq(chain.received(chain.alog, "/invalid"), [BAD_TP], "/invalid: A got only the bad header")
    check(asrv["trace_id"] != BAD_TP[3:35].lower(), "/invalid: not taken as the trace id")
    check_eq(asrv["parent_span_id"], "", "/invalid: A server is a root")
    check_eq(asrv.get("remote_parent"), None, "/invalid: no remote parent")
    check_eq(asrv["trace_flags"], "01", "/invalid: fresh trace is sampled")

    c, asrv, acli, bsrv = check_linked(chain, roles, "/ids")
    check_eq(asrv.get("request_id"), "req-123", "/ids: X-Request-ID on A server span")
    check_eq(c.get("request_id"), "req-123", "/ids: X-Request-ID on the client span")
    with open(agent.spans_path) as f:
        check("s3cret" not in f.read(), "Authorization and Cookie never recorded")

    c, asrv, acli, bsrv = check_linked(chain, roles, "/boom")
    check_eq((bsrv["status"], bsrv.get("error_type")), (500, "500"), "/boom: B server error_type")
    check_eq((acli["status"], acli.get("error_type")), (500, "500"), "/boom: A client error_type")
    check_eq((asrv["status"], asrv.get("error_type")), (500, "500"), "/boom: A server error_type")
    check_eq(one(roles, "a_server", "/chain").get("error_type"), None, "200: no error_type")

    # A sends its own traceparent: B sees exactly it; the spans follow it.
    c, asrv = one(roles, "client", "/fwd"), one(roles, "a_server", "/fwd")
    acli, bsrv = one(roles, "a_client", "/fwd"), one(roles, "b_server", "/fwd")
    check_eq(chain.received(chain.blog, "/fwd"), [OWN_TP], "/fwd: B got only A's own header")
    check_eq((acli["trace_id"], acli["parent_span_id"]), (OWN_TP[3:35], OWN_TP[36:52]),
             "/fwd: A client span follows its own header")
    check_eq((bsrv["trace_id"], bsrv["parent_span_id"]), (OWN_TP[3:35], OWN_TP[36:52]),
             "/fwd: B server span child of the header")
    check_eq(asrv["parent_span_id"], c["span_id"], "/fwd: A server child of the client")

    # Split and pipelined sends are left untouched; userspace still links
    # A's client spans to its server span by thread.
    asrv = one(roles, "a_server", "/split")
    acli, bsrv = one(roles, "a_client", "/split"), one(roles, "b_server", "/split")
    check_eq(chain.received(chain.blog, "/split"), [], "/split: B got no traceparent")
    check_eq((acli["trace_id"], acli["parent_span_id"]), (asrv["trace_id"], asrv["span_id"]),
             "/split: A client linked to A server by thread")
    check(bsrv["trace_id"] != asrv["trace_id"], "/split: B server starts its own trace")
    asrv = one(roles, "a_server", "/pipe")
    for p in ("/pipe1", "/pipe2"):
        acli = one(roles, "a_client", p)
        check_eq(chain.received(chain.blog, p), [], f"{p}: B got no traceparent")
        check_eq((acli["trace_id"], acli["parent_span_id"]), (asrv["trace_id"], asrv["span_id"]),
                 f"{p}: A client linked to A server by thread")
        one(roles, "b_server", p)

    m = agent.metrics()
    check_eq(series(m, "sonde_traceparent_invalid_total"), 1.0, "invalid traceparent counted once")
    # test client: chain v6chain ids boom fwd split pipe; A: chain v6chain keep invalid ids boom
    check_eq(series(m, "sonde_injected_total"), 13.0, "requests injected")
    for reason, n in (("has_header", 3.0), ("split", 1.0), ("pipelined", 1.0),
                      ("head_too_long", 0.0), ("too_big", 0.0), ("failed", 0.0)):
        check_eq(series(m, "sonde_inject_skipped_total", reason=reason), n, f"skipped {reason}")
    check_eq(agent.stop(), 0, "agent exits cleanly")

    print("== --no-inject", flush=True)
    agent = Agent("--no-inject", name="agent --no-inject")
    m = agent.metrics()
    check_eq(series(m, "sonde_probe_info", hook="sockops", mode="cgroup"), None, "no sockops")
    check_eq(get(chain.a, "/noinj"), 200, "/noinj status")
    wait_until("/noinj spans", lambda: len(by_role(agent.spans(), chain, me)) >= 4, timeout=10,
               fatal=False)
    time.sleep(0.3)
    roles = by_role(agent.spans(), chain, me)
    check_eq(chain.received(chain.alog, "/noinj"), [], "--no-inject: A got no traceparent")
    check_eq(chain.received(chain.blog, "/noinj"), [], "--no-inject: B got no traceparent")
    asrv, acli = one(roles, "a_server", "/noinj"), one(roles, "a_client", "/noinj")
    check_eq((acli["trace_id"], acli["parent_span_id"]), (asrv["trace_id"], asrv["span_id"]),
             "--no-inject: A client still linked to A server in userspace")
    check(one(roles, "b_server", "/noinj")["trace_id"] != asrv["trace_id"],
          "--no-inject: B cannot be linked")
    check_eq(series(agent.metrics(), "sonde_injected_total"), 0.0, "--no-inject: nothing injected")
    check_eq(agent.stop(), 0, "agent --no-inject exits cleanly")

    # Learnt ports, limited to A by --pid (other programs on this host are
    # never touched): A's first connection to B is injected by the process
    # rule (A serves HTTP: test_inject_first.py), and B's port is learnt.
    print("== learnt HTTP port (--pid A)", flush=True)
    agent = Agent("--pid", str(chain.pa.pid), name="agent --pid")
    check_eq(get(chain.a, "/learn1"), 200, "/learn1 status")
    wait_until("/learn1 spans", lambda: ("a_client", "/learn1") in by_role(agent.spans(), chain, me),
               timeout=10, fatal=False)
    time.sleep(0.2)  # the port reaches the kernel map with the span
    check_eq(get(chain.a, "/learn2"), 200, "/learn2 status")
    wait_until("/learn2 spans", lambda: ("a_client", "/learn2") in by_role(agent.spans(), chain, me),
               timeout=10, fatal=False)
    roles = by_role(agent.spans(), chain, me)
    acli1 = one(roles, "a_client", "/learn1")
    check_eq(chain.received(chain.blog, "/learn1"), [tp_of(acli1)],
             "first connection to B: injected (process rule) with A client's ids")
    mid = agent.map_id("http_ports")
    key = [f"0x{b:02x}" for b in chain.b4.to_bytes(2, "little")]
    check_eq(subprocess.run(["bpftool", "map", "lookup", "id", str(mid), "key", *key],
                            capture_output=True).returncode, 0, "B's port learnt (http_ports)")
    acli, asrv = one(roles, "a_client", "/learn2"), one(roles, "a_server", "/learn2")
    check_eq(chain.received(chain.blog, "/learn2"), [tp_of(acli)],
             "next connection to the learnt port: injected with A client's ids")
    check_eq(acli["parent_span_id"], asrv["span_id"], "/learn2: A client child of A server")
    check_eq(roles.get(("b_server", "/learn2")), None, "--pid A: B's spans not reported")
    m = agent.metrics()
    check_eq(series(m, "sonde_injected_total"), 2.0, "--pid A: A's two requests injected")
    check_eq(agent.stop(), 0, "agent --pid exits cleanly")

    # Keep-alive connections sockops never saw are adopted by the daemon
    # after their first request it parses: one older than the agent (to an
    # --inject-port port), and the one that taught a learnt port.
    for title, pre, args in (("older than the agent", True, ["--inject-port", str(chain.b4), "--no-inject-learn"]),
                             ("that taught the port", False, [])):
        print(f"== adopted connection {title}", flush=True)
        prefix = "/pre/" if pre else "/taught/"
        ka, agent = None, None
        if pre:
            ka = spawn([sys.executable, KACLIENT, str(chain.b4), "3", "0.5", prefix],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            check_eq(ka.stdout.readline().strip(), "connected", f"{title}: connected before the agent")
            agent = Agent("--pid", str(ka.pid), *args, name="agent adopt")
        else:
            # the agent must know the pid first: a client that waits for a line
            ka = spawn([sys.executable, "-c", "import os,sys; sys.stdin.readline(); "
                        f"os.execv(sys.executable, [sys.executable, {KACLIENT!r}, '{chain.b4}', '3', '0.5', '{prefix}'])"],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            agent = Agent("--pid", str(ka.pid), *args, name="agent adopt")
            ka.stdin.write("go\n")
            ka.stdin.flush()
            check_eq(ka.stdout.readline().strip(), "connected", f"{title}: first request answered")
            # adoption follows the parsed request by a drain period (~25 ms)
            wait_until(f"{title}: adopted", lambda: series(agent.metrics(),
                       "sonde_inject_connections_adopted_total") == 1.0, timeout=5, fatal=False)
        ka.stdin.write("go\n")
        ka.stdin.flush()
        check_eq(ka.stdout.readline().strip(), "done", f"{title}: keep-alive requests done")
        ka.wait(10)
        first = 1 if pre else 0   # the first request the agent parses teaches it
        wait_until(f"{title}: client spans", lambda: len([s for s in agent.spans() if s["kind"] == "client"
                                                           and s["target"].startswith(prefix)]) >= 4 - first,
                   timeout=10, fatal=False)
        cli = {s["target"]: s for s in agent.spans() if s["kind"] == "client" and s["target"].startswith(prefix)}
        check_eq(sorted(cli), [f"{prefix}{i}" for i in range(first, 4)], f"{title}: client spans")
        check_eq(chain.received(chain.blog, f"{prefix}{first}"), [], f"{title}: the request that taught it: not injected")
        for i in range(first + 1, 4):
            p = f"{prefix}{i}"
            check_eq(chain.received(chain.blog, p), [tp_of(cli[p])] if p in cli else None,
                     f"{title}: {p} on the same connection injected with its client span's ids")
        m = agent.metrics()
        check_eq(series(m, "sonde_inject_connections_adopted_total"), 1.0, f"{title}: one connection adopted")
        check_eq(series(m, "sonde_injected_total"), float(3 - first), f"{title}: requests injected")
        check_eq(agent.stop(), 0, f"{title}: agent exits cleanly")
    finish("test_tracectx")


if __name__ == "__main__":
    main()
