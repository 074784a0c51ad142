"""An HTTP/1.1 server that answers one request per connection, each with a
different pair of socket calls, so that every syscall a capture tier must
understand carries a request: read/write, recv/send, readv/writev,
recvmsg/sendmsg, recv(MSG_PEEK) then recv, a sendfile body and a splice
body. Usage: ioserver.py PORT BODYDIR STYLE... (connection i gets STYLE i;
then it exits). Prints "ready" once listening."""
import os
import socket
import struct
import sys

HEAD = "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n"
BODY = {"read": 11, "recv": 12, "vec": 13, "msg": 14, "peek": 15, "sendfile": 3000, "splice": 2000}


def read_request(c, style):
    data = b""
    while b"\r\n\r\n" not in data:
        if style == "read":
            got = os.read(c.fileno(), 4096)
        elif style == "vec":
            buf = bytearray(4096)
            n = os.readv(c.fileno(), [buf])
            got = bytes(buf[:n])
        elif style == "msg":
            got = c.recvmsg(4096)[0]
        elif style == "peek":
            c.recv(4096, socket.MSG_PEEK)  # looked at, then read for real
            got = c.recv(4096)
        else:
            got = c.recv(4096)
        if not got:
            return None
        data += got
    return data


def answer(c, style, bodydir):
    n = BODY[style]
    head = HEAD.format(n).encode()
    body = bytes([ord("a") + len(style)]) * n
    if style == "read":
        os.write(c.fileno(), head + body)
    elif style == "vec":
        os.writev(c.fileno(), [head, body])
    elif style == "msg":
        c.sendmsg([head, body])
    elif style == "sendfile":
        c.sendall(head)
        path = os.path.join(bodydir, "body")
        with open(path, "wb") as f:
            f.write(body)
        with open(path, "rb") as f:
            sent = 0
            while sent < n:
                sent += os.sendfile(c.fileno(), f.fileno(), sent, n - sent)
    elif style == "splice":
        c.sendall(head)
        r, w = os.pipe()
        os.write(w, body)
        moved = 0
        while moved < n:
            moved += os.splice(r, c.fileno(), n - moved)
        os.close(r)
        os.close(w)
    else:
        c.sendall(head + body)


def main():
    port, bodydir, styles = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(16)
    srv.settimeout(60)
    print("ready", flush=True)
    for style in styles:
        c, _ = srv.accept()
        # Blocking fd (os.read/readv need it), bounded by a kernel timeout.
        c.setblocking(True)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 10, 0))
        c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 10, 0))
        if read_request(c, style) is not None:
            answer(c, style, bodydir)
        c.close()


if __name__ == "__main__":
    main()
