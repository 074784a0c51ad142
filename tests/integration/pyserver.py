"""Python http.server (HTTP/1.1, keep-alive, threaded) with known routes and
statuses for sonde's integration tests. Usage: pyserver.py PORT"""
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, code, body=b"ok\n"):
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/hello":
            self.reply(200, b"hello\n")
        elif path == "/slow":
            time.sleep(0.2)
            self.reply(200, b"slow\n")
        elif path == "/boom":
            self.reply(500, b"boom\n")
        elif path.startswith("/items/"):
            self.reply(200, b"item\n")
        else:
            self.reply(404, b"no\n")

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        self.reply(201, body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    srv = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print("ready", flush=True)
    srv.serve_forever()
