"""OTLP/HTTP sink for the export benchmarks (scripts/bench.sh,
tests/bench/export_cost.py): answers every POST with 200 and an empty body
(a valid, fully successful Export*ServiceResponse) after reading and
discarding the request body. Python's HTTP/1.1 handler answers
"Expect: 100-continue" itself. Usage: otlp_sink.py PORT"""
import http.server
import sys


class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        while n > 0:
            b = self.rfile.read(min(n, 1 << 20))
            if not b:
                break
            n -= len(b)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
