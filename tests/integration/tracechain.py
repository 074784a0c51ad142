"""Services for test_tracectx.py, plain Python with no tracing library:
  b PORT HOST LOG      http.server that appends {"path", "traceparent": [...],
                       "headers": [...]} per request to LOG; /boom answers 500
  a PORT B4 B6 LOG     http.server (thread per request) that records the same
                       and calls B with http.client: 127.0.0.1:B4, or [::1]:B6
                       for /v6...; /fwd... sends its own traceparent; /split
                       writes the request line in two sends; /pipe sends two
                       requests in one send. Answers with B's status.
Prints "ready" when listening."""
import http.client
import http.server
import json
import socket
import sys
import threading
import time

OWN_TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
_lock = threading.Lock()


def record(log, handler):
    entry = {"path": handler.path,
             "traceparent": handler.headers.get_all("traceparent") or [],
             "headers": [k.lower() for k in handler.headers.keys()]}
    with _lock, open(log, "a") as f:
        f.write(json.dumps(entry) + "\n")


def read_responses(sock, n):
    """Reads n responses with Content-Length bodies; returns the statuses."""
    buf, statuses = b"", []
    deadline = time.monotonic() + 5
    while len(statuses) < n and time.monotonic() < deadline:
        while b"\r\n\r\n" in buf:
            head, rest = buf.split(b"\r\n\r\n", 1)
            lines = head.decode().split("\r\n")
            length = 0
            for line in lines[1:]:
                k, _, v = line.partition(":")
                if k.strip().lower() == "content-length":
                    length = int(v)
            if len(rest) < length:
                break
            statuses.append(int(lines[0].split()[1]))
            buf = rest[length:]
        if len(statuses) >= n:
            break
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    return statuses


def raw_call(port, sends, n):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        for i, data in enumerate(sends):
            if i:
                time.sleep(0.05)
            s.sendall(data)
        statuses = read_responses(s, n)
    return statuses[-1] if statuses else 599


def serve_b(port, host, log):
    class B(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            record(log, self)
            status = 500 if self.path.startswith("/boom") else 200
            body = b"b"
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    cls = http.server.ThreadingHTTPServer
    if ":" in host:
        cls = type("V6", (http.server.ThreadingHTTPServer,), {"address_family": socket.AF_INET6})
    srv = cls((host, port), B)
    print("ready", flush=True)
    srv.serve_forever()


def serve_a(port, b4, b6, log):
    class A(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            record(log, self)
            p = self.path
            if p.startswith("/split"):
                status = raw_call(b4, [b"GET /spl", b"it HTTP/1.1\r\nHost: b\r\n\r\n"], 1)
            elif p.startswith("/pipe"):
                status = raw_call(b4, [b"GET /pipe1 HTTP/1.1\r\nHost: b\r\n\r\n"
                                       b"GET /pipe2 HTTP/1.1\r\nHost: b\r\n\r\n"], 2)
            else:
                host, bport = ("::1", b6) if p.startswith("/v6") else ("127.0.0.1", b4)
                conn = http.client.HTTPConnection(host, bport, timeout=5)
                headers = {"traceparent": OWN_TP} if p.startswith("/fwd") else {}
                conn.request("GET", p, headers=headers)
                r = conn.getresponse()
                r.read()
                status = r.status
                conn.close()
            body = b"a"
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), A)
    print("ready", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "b":
        serve_b(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        serve_a(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
