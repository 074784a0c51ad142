"""Python http.server (HTTP/1.1 keep-alive, threaded) for the pipelining
test: GET /p/<i> answers 200, 404 or 500 by i % 3, so a span's status
tells which request it was paired with. Usage: pipeserver.py PORT"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        i = int(self.path.rsplit("/", 1)[1])
        body = b"p%d\n" % i
        self.send_response((200, 404, 500)[i % 3])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    srv = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print("ready", flush=True)
    srv.serve_forever()
