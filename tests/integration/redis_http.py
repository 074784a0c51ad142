"""HTTP server for test_db.py whose handler makes one Redis call (raw RESP
over a socket, no client library) while serving the request, on the same
thread: the Redis client span must be a child of the HTTP server span.
/sonde-db-kill blocks in BLPOP until the test kills that Redis client: 502.
Usage: redis_http.py HTTP_PORT REDIS_PORT; prints "ready"."""
import socket
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

REDIS_PORT = int(sys.argv[2])


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        with socket.create_connection(("127.0.0.1", REDIS_PORT)) as r:
            if self.path == "/sonde-db-kill":
                # blocks until the test kills this Redis client (CLIENT KILL)
                r.sendall(b"*3\r\n$5\r\nBLPOP\r\n$11\r\nsonde:never\r\n$1\r\n0\r\n")
            else:
                r.sendall(b"*2\r\n$3\r\nGET\r\n$11\r\nsonde:trace\r\n")
            reply = r.recv(64)
        body = b"redis said " + (reply.split(b"\r\n")[0] if reply else b"nothing") + b"\n"
        self.send_response(200 if reply else 502)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


srv = HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
print("ready", flush=True)
srv.serve_forever()
