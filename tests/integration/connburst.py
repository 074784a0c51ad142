"""A burst of keep-alive HTTP/1.1 connections for test_burst.py: opens
CONNS connections to 127.0.0.1:PORT as fast as the server accepts them (at
most WAVE handshakes in flight, so nginx's accept queue never overflows),
sends GET /hello on each as soon as it is connected and reads the response;
once every connection has answered, sends a second request on every one of
them (all CONNS connections are alive and in use at once), then closes them
all. Prints "done <200 responses> <other> <seconds of the first round>".
Usage: connburst.py PORT CONNS"""
import resource
import selectors
import socket
import sys
import time

WAVE = 400
REQUEST = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def answer(sock, buf):
    """One full response read (nginx's /hello is 'hello\\n', Content-Length 6);
    a connection closed before it is status b"closed"."""
    data = sock.recv(4096)
    if not data:
        return b"", b"closed"
    buf += data
    head, sep, body = buf.partition(b"\r\n\r\n")
    return (buf, None) if not sep or len(body) < 6 else (b"", head.split(b" ", 2)[1])


def round_trip(sel, socks, deadline):
    """Sends REQUEST on every connected socket, reads each response."""
    ok = bad = 0
    bufs = {}
    for s in socks:
        s.sendall(REQUEST)
        sel.register(s, selectors.EVENT_READ)
        bufs[s] = b""
    while bufs and time.monotonic() < deadline:
        for key, _ in sel.select(1):
            s = key.fileobj
            bufs[s], status = answer(s, bufs[s])
            if status is not None:
                ok += status == b"200"
                bad += status != b"200"
                sel.unregister(s)
                del bufs[s]
    return ok, bad


def main():
    port, conns = int(sys.argv[1]), int(sys.argv[2])
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sel = selectors.DefaultSelector()
    deadline = time.monotonic() + 60
    start = time.monotonic()
    connecting, fresh, connected = set(), [], []
    ok = bad = opened = 0
    while (opened < conns or connecting or fresh) and time.monotonic() < deadline:
        while opened < conns and len(connecting) < WAVE:
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            sel.register(s, selectors.EVENT_WRITE)
            connecting.add(s)
            opened += 1
        for key, _ in sel.select(1):
            sel.unregister(key.fileobj)
            connecting.discard(key.fileobj)
            fresh.append(key.fileobj)
        # each wave's first requests go out as soon as it is connected
        if len(fresh) >= WAVE or (opened == conns and not connecting):
            o, b = round_trip(sel, fresh, deadline)
            ok, bad = ok + o, bad + b
            connected += fresh
            fresh = []
    first = time.monotonic() - start
    o, b = round_trip(sel, connected, deadline)
    for s in connected:
        s.close()
    print(f"done {ok + o} {bad + b} {first:.2f}", flush=True)


if __name__ == "__main__":
    main()
