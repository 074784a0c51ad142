"""HTTPS server for test_tls.py: Python's http.server wrapped in ssl (which
calls OpenSSL's SSL_read_ex/SSL_write_ex). Usage: tlsserver.py PORT CERT KEY
[hang]. Prints "ready" once listening. In hang mode every request is read and
never answered (a client then blocks inside SSL_read)."""
import http.server
import ssl
import sys
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if len(sys.argv) > 4 and sys.argv[4] == "hang":
            time.sleep(3600)
        code = 404 if self.path.startswith("/missing") else 200
        body = f"tls {self.path}\n".encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("ready", flush=True)
srv.serve_forever()
