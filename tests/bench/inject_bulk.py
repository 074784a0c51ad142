"""Cost of injection's process rule on non-HTTP traffic (issue #15 item 5).

A process that speaks HTTP (one request to a local http.server, seen by the
agent) then streams SIZE bytes through one TCP connection to a local sink on
a fresh port (not known as non-HTTP): under the process rule that connection
is in the sockhash, so every send goes through tcp_bpf and the sk_msg
program (which passes it: no request line). Compared with --no-inject, in
interleaved rounds; reports the sender's CPU time (user+sys) and throughput,
median and spread. Run as root, one agent per host:
  flock /tmp/sonde-agent.lock python3 tests/bench/inject_bulk.py [ROUNDS] [MB]"""
import http.client
import http.server
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import Agent, cleanup, free_port, wait_until  # noqa: E402

SO_COOKIE = getattr(socket, "SO_COOKIE", 57)
CHILD = r'''
import http.client, os, resource, socket, sys, time
http_port, sink_port, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=5)
c.request("GET", "/hello"); c.getresponse().read(); c.close()
time.sleep(1.0)  # the agent classifies the request: this process speaks HTTP
s = socket.create_connection(("127.0.0.1", sink_port))
cookie = int.from_bytes(s.getsockopt(socket.SOL_SOCKET, 57, 8), "little")
print(cookie, flush=True)
sys.stdin.readline()  # the parent has looked at the sockhash
buf = memoryview(b"\x00\x07bulk" * 16384)  # 96 KiB, nothing like a request line
r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
sent = 0
while sent < size:
    s.sendall(buf)
    sent += len(buf)
s.shutdown(socket.SHUT_WR)
s.recv(1)
t1, r1 = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
print(f"{t1 - t0} {cpu} {r1.ru_stime - r0.ru_stime}", flush=True)
'''


def sink(port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(4)

    def loop():
        while True:
            c, _ = ls.accept()

            def drain(c=c):
                with c:
                    while c.recv(1 << 20):
                        pass
                    c.sendall(b"k")
            threading.Thread(target=drain, daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()
    return ls


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"hi")

    def log_message(self, *a):
        pass


def in_sockhash(agent, cookie):
    mid = agent.map_id("inject_socks")
    out = subprocess.run(["bpftool", "-j", "map", "dump", "id", str(mid)],
                         capture_output=True, text=True).stdout
    for e in json.loads(out or "[]"):
        key = e.get("key")
        if isinstance(key, list) and int.from_bytes(bytes(int(b, 16) for b in key), "little") == cookie:
            return True
    return False


def one(mode, size, http_port):
    agent = Agent(*(["--no-inject"] if mode == "no-inject" else []), print_spans=False, name=mode)
    sink_port = free_port()
    ls = sink(sink_port)
    p = subprocess.Popen([sys.executable, "-c", CHILD, str(http_port), str(sink_port), str(size)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    cookie = int(p.stdout.readline())
    hashed = agent.map_id("inject_socks") is not None and in_sockhash(agent, cookie)
    p.stdin.write("\n")
    p.stdin.flush()
    wall, cpu, sys_cpu = map(float, p.stdout.readline().split())
    p.wait()
    ls.close()
    agent.stop()
    return {"mode": mode, "in_sockhash": hashed, "wall_s": wall, "cpu_s": cpu, "sys_s": sys_cpu,
            "mb_s": size / wall / 1e6}


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    size = (int(sys.argv[2]) if len(sys.argv) > 2 else 200) * 1000 * 1000
    http_port = free_port()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", http_port), Hello)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    res = {"inject": [], "no-inject": []}
    for r in range(rounds):
        for mode in (("inject", "no-inject") if r % 2 == 0 else ("no-inject", "inject")):
            x = one(mode, size, http_port)
            print(json.dumps(x), flush=True)
            res[mode].append(x)
    for mode, xs in res.items():
        for k in ("mb_s", "cpu_s", "sys_s"):
            v = [x[k] for x in xs]
            print(f"{mode:10s} {k:6s} median {statistics.median(v):9.3f}  "
                  f"min {min(v):9.3f}  max {max(v):9.3f}", flush=True)
    cleanup()


if __name__ == "__main__":
    main()
