"""Integration: the first request to a server never seen before gets a
traceparent (issue #15 item 5). A hidden chain of unmodified Python programs
(this test's http.client -> A, a thread-per-request http.server that calls B
with http.client -> B, an http.server on a fresh port), all started after the
agent, no --inject-port: every one of A's requests to B, the first included,
carries a traceparent in the client span's trace. A process that speaks HTTP
and connects to a port known to carry another protocol is left out of the
sockhash (counted, and checked in a dump of the sockhash)."""
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Agent, check, check_eq, finish, free_port, series, spawn, wait_until  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CHAIN = os.path.join(HERE, "tracechain.py")
SO_COOKIE = getattr(socket, "SO_COOKIE", 57)
N = 5


def start(args):
    p = spawn([sys.executable, CHAIN, *map(str, args)], stdout=subprocess.PIPE, text=True)
    check_eq(p.stdout.readline().strip(), "ready", f"{args[0]} :{args[1]} started")
    return p


def read_log(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


def tp_of(s):
    return f"00-{s['trace_id']}-{s['span_id']}-{s['trace_flags']}"


def echo_server(port):
    """A plain TCP echo server (no protocol sonde knows)."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(16)

    def serve(c):
        with c:
            while True:
                d = c.recv(65536)
                if not d:
                    return
                c.sendall(d)

    def loop():
        while True:
            c, _ = ls.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()
    return ls


def sockhash_cookies(agent):
    mid = agent.map_id("inject_socks")
    check(mid is not None, "the sockhash inject_socks found")
    out = subprocess.run(["bpftool", "-j", "map", "dump", "id", str(mid)],
                         capture_output=True, text=True).stdout
    cookies = set()
    for e in json.loads(out or "[]"):
        key = e.get("key") or e.get("formatted", {}).get("key")
        if isinstance(key, list):
            cookies.add(int.from_bytes(bytes(int(b, 16) for b in key), "little"))
        elif isinstance(key, int):
            cookies.add(key)
    return cookies


def map_has_port(agent, name, port):
    mid = agent.map_id(name)
    if mid is None:
        return False
    key = [f"0x{b:02x}" for b in port.to_bytes(2, "little")]
    r = subprocess.run(["bpftool", "map", "lookup", "id", str(mid), "key", *key],
                       capture_output=True, text=True)
    return r.returncode == 0


def main():
    if os.geteuid() != 0:
        raise SystemExit("FAIL: the integration tests load BPF programs and must run as root")
    me = os.getpid()
    agent = Agent()
    m = agent.metrics()
    check_eq(series(m, "sonde_probe_info", hook="sockops", mode="cgroup"), 1.0, "sockops attached")
    att = [r for r in agent.log_records() if r.get("@message") == "traceparent injection attached"]
    check_eq(att[0].get("process_rule") if att else None, "available",
             "process rule available on this kernel")

    # The services, after the agent, on ports nobody used before.
    d = tempfile.mkdtemp(prefix="sonde-inject-first-")
    alog, blog, zlog = (os.path.join(d, n) for n in ("a.jsonl", "b.jsonl", "z.jsonl"))
    b, b6, a, z = free_port(), free_port(), free_port(), free_port()
    start(["b", b, "127.0.0.1", blog])
    start(["b", b6, "::1", blog])
    pa = start(["a", a, b, b6, alog])
    start(["b", z, "127.0.0.1", zlog])
    print(f"== client -> A :{a} -> B :{b} (fresh ports)", flush=True)

    # This test's process speaks HTTP once (to Z) before it calls A.
    check_eq(get(z, "/warm"), 200, "/warm status")
    wait_until("the client span of /warm", lambda: any(
        s["pid"] == me and s["kind"] == "client" and s["target"] == "/warm" for s in agent.spans()))

    for i in range(N):
        check_eq(get(a, f"/first{i}"), 200, f"/first{i} status")

    def spans_of(i):
        got = {}
        for s in agent.spans():
            if s["target"] != f"/first{i}":
                continue
            if s["pid"] == me and s["kind"] == "client":
                got["client"] = s
            elif s["pid"] == pa.pid:
                got["a_" + s["kind"]] = s
            else:
                got["b_" + s["kind"]] = s
        return got
    wait_until("all spans", lambda: all(len(spans_of(i)) == 4 for i in range(N)), fatal=False)

    print("== every request of A to B carries the client's trace", flush=True)
    linked = 0
    for i in range(N):
        p = f"/first{i}"
        sp = spans_of(i)
        c = sp.get("client")
        check(c is not None, f"{p}: client span")
        if not c:
            continue
        got_b = [e["traceparent"] for e in read_log(blog) if e["path"] == p]
        got_a = [e["traceparent"] for e in read_log(alog) if e["path"] == p]
        check_eq(got_a, [[tp_of(c)]], f"{p}: A got exactly one traceparent, the client span's")
        check_eq(len(got_b), 1, f"{p}: reached B once")
        tps = got_b[0] if got_b else []
        check_eq(len(tps), 1, f"{p}: B got exactly one traceparent")
        if len(tps) == 1 and tps[0][3:35] == c["trace_id"]:
            linked += 1
        check_eq(tps[0][3:35] if tps else None, c["trace_id"], f"{p}: B's traceparent in the client's trace")
        if sp.get("a_client") and tps:
            check_eq(tps[0], tp_of(sp["a_client"]), f"{p}: B's traceparent is A client span's ids")
    print(f"   linked A->B: {linked}/{N}", flush=True)
    check_eq(linked, N, "A->B requests linked")

    print("== a port known to carry another protocol is left out", flush=True)
    echo_port = free_port()
    ls = echo_server(echo_port)
    # The first connection (port unknown): in the sockhash, passed through,
    # and taken out once the daemon sees it carries no HTTP.
    s1 = socket.create_connection(("127.0.0.1", echo_port), timeout=5)
    cookie1 = int.from_bytes(s1.getsockopt(socket.SOL_SOCKET, SO_COOKIE, 8), "little")
    check(cookie1 in sockhash_cookies(agent), "first connection to an unknown port: in the sockhash")
    for _ in range(4):
        s1.sendall(b"\x00\x01\x02binary\xff" * 8)
        check_eq(len(s1.recv(65536)) > 0, True, "echo answered (passed through)")
    wait_until("the first connection taken out of the sockhash",
               lambda: cookie1 not in sockhash_cookies(agent))
    check((series(agent.metrics(), "sonde_inject_connections_dropped_total") or 0) >= 1,
          "sonde_inject_connections_dropped_total counted")
    wait_until("the echo port learnt as not HTTP", lambda: map_has_port(agent, "not_http_ports", echo_port))
    before = series(agent.metrics(), "sonde_inject_skipped_total", reason="not_http_port") or 0
    s2 = socket.create_connection(("127.0.0.1", echo_port), timeout=5)
    s2.sendall(b"\x00\x01 more binary")
    s2.recv(65536)
    cookie2 = int.from_bytes(s2.getsockopt(socket.SOL_SOCKET, SO_COOKIE, 8), "little")
    check(cookie2 not in sockhash_cookies(agent), "connection to a non-HTTP port: not in the sockhash")
    after = series(agent.metrics(), "sonde_inject_skipped_total", reason="not_http_port") or 0
    check(after >= before + 1, f"sonde_inject_skipped_total{{reason=not_http_port}} counted ({before} -> {after})")
    s1.close()
    s2.close()
    ls.close()
    agent.stop()
    finish("test_inject_first")


if __name__ == "__main__":
    main()
