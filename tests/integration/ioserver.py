"""An HTTP/1.1 server that answers one request per connection, each with a
different pair of socket calls, so that every syscall a capture tier must
understand carries a request: read/write, recv/send, readv/writev,
recvmsg/sendmsg, recv(MSG_PEEK) then recv, a sendfile body, a splice
body, and recvmmsg/sendmmsg (through ctypes: Python has no binding). Usage: ioserver.py PORT BODYDIR STYLE... (connection i gets STYLE i;
then it exits). Prints "ready" once listening."""
import ctypes
import os
import socket
import struct
import sys

HEAD = "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n"
BODY = {"read": 11, "recv": 12, "vec": 13, "msg": 14, "peek": 15, "sendfile": 3000, "splice": 2000,
        "mmsg": 16}


class IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class MsgHdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.POINTER(IoVec)),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


class MMsgHdr(ctypes.Structure):
    _fields_ = [("hdr", MsgHdr), ("len", ctypes.c_uint)]


LIBC = ctypes.CDLL(None, use_errno=True)


def mmsg(fd, buf, send):
    """One recvmmsg/sendmmsg of a single message on buf; returns its bytes."""
    iov = IoVec(ctypes.cast(buf, ctypes.c_void_p), len(buf))
    m = MMsgHdr()
    m.hdr.iov = ctypes.pointer(iov)
    m.hdr.iovlen = 1
    n = LIBC.sendmmsg(fd, ctypes.byref(m), 1, 0) if send else LIBC.recvmmsg(fd, ctypes.byref(m), 1, 0, None)
    if n != 1:
        raise OSError(ctypes.get_errno(), "sendmmsg" if send else "recvmmsg")
    return m.len


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
        elif style == "mmsg":
            buf = ctypes.create_string_buffer(4096)
            n = mmsg(c.fileno(), buf, False)
            got = buf.raw[:n]
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
    elif style == "mmsg":
        data = head + body
        buf = ctypes.create_string_buffer(data, len(data))
        if mmsg(c.fileno(), buf, True) != len(data):
            raise OSError("short sendmmsg")
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
