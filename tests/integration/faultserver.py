"""An HTTP/1.1 server that fails on purpose, for test_conn_errors.py.
Usage: faultserver.py PORT. Prints "ready" once listening on 127.0.0.1.
Each connection carries one request; what the server does with it depends
on the path:
  /close      closes without answering (the client reads EOF)
  /reset      closes with SO_LINGER 0 (the client's read fails ECONNRESET)
  /cut        sends a head announcing 1000 bytes, 10 of them, then closes
  /cutreset   the same, then resets
  /hang       never answers; waits for the client to hang up (10 s at most)
  anything else: 200 "ok\n"
"""
import socket
import socketserver
import struct
import sys

HEAD_CUT = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: text/plain\r\n\r\n"


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        s.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                return
            data += chunk
        path = data.split(b" ", 2)[1].decode("latin-1")
        if path in ("/cut", "/cutreset"):
            s.sendall(HEAD_CUT + b"0123456789")
        if path in ("/reset", "/cutreset"):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif path == "/hang":
            try:
                while s.recv(4096):
                    pass
            except OSError:
                pass
        elif path not in ("/close", "/cut"):
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
        # Closed here: socketserver would shutdown(SHUT_WR) first, and that
        # FIN would reach the client before the reset.
        s.close()


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    srv = Server(("127.0.0.1", int(sys.argv[1])), Handler)
    print("ready", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
