"""HTTP/1.1 pipelining client for sonde's integration tests: opens CONNS
connections one after the other and on each writes K requests in one
sendall(), then reads every response with recv(RECV) and closes.
Request i asks STYLE's path for i (see paths()); prints one line per
connection: "<local port> <statuses, comma-separated>".
Usage: pipeclient.py PORT CONNS K STYLE RECV"""
import re
import socket
import sys


def paths(style, k):
    """nginx: /users/i answers 200, /missing?i 404 (nginx closes a
    keep-alive connection after a 500, so it has none); py: /p/i, whose
    status pyserver-style handlers choose by i % 3."""
    if style == "nginx":
        return [f"/users/{i}" if i % 2 == 0 else f"/missing?{i}" for i in range(k)]
    return [f"/p/{i}" for i in range(k)]


def main():
    port, conns, k, style, recv = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]),
                                   sys.argv[4], int(sys.argv[5]))
    for _ in range(conns):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"".join(f"GET {p} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for p in paths(style, k)))
        buf, statuses = b"", []
        while len(statuses) < k:
            d = s.recv(recv)
            if not d:
                break
            buf += d
            # whole responses only: head, then Content-Length bytes of body
            while True:
                m = re.match(rb"HTTP/1\.1 (\d{3})[^\r]*\r\n(.*?)\r\n\r\n", buf, re.S)
                if not m:
                    break
                cl = re.search(rb"(?i)content-length: *(\d+)", m.group(2))
                end = m.end() + (int(cl.group(1)) if cl else 0)
                if len(buf) < end:
                    break
                statuses.append(int(m.group(1)))
                buf = buf[end:]
        print(s.getsockname()[1], ",".join(map(str, statuses)), flush=True)
        s.close()


if __name__ == "__main__":
    main()
