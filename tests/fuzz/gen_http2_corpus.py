"""Writes the seed inputs of fuzz_http2 (format in tests/fuzz/fuzz_http2.c):
small HTTP/2 conversations with HPACK blocks written by hand (static table
indexes, literals with incremental indexing, then dynamic-table indexes).
Run: cd tests/fuzz/corpus-http2 && python3 ../gen_http2_corpus.py"""
import struct


def frame(t, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([t, flags]) + struct.pack(">I", sid) + payload


def lit(name, value):  # literal with incremental indexing, new name
    return b"\x40" + bytes([len(name)]) + name + bytes([len(value)]) + value


def chunks(direction, data, gap=0):
    """Control byte + up to 64 bytes per feed; direction 0x80 = ingress."""
    out = b""
    while data:
        part, data = data[:64], data[64:]
        c = direction | (len(part) - 1)
        if gap and not data and direction == 0:
            c = direction | 0x40 | (len(part) - 1) & 0x0f
            part = part[:(c & 0x3f) + 1]
        if c == 0x7f:  # the close marker: split differently
            out += bytes([direction | 0]) + part[:1]
            part = part[1:]
            c = direction | (len(part) - 1)
        out += bytes([c]) + part
    return out


GET = b"\x82\x86\x84" + lit(b":authority", b"a.test") + lit(b"x-custom", b"repeat")
GET2 = b"\x82\x86\x04\x08/users/5\xbf\xbe"  # :path literal (indexed name 4), dynamic 62/63
RESP = b"\x88" + lit(b"content-type", b"text/plain")
RESP2 = b"\x88\xbe"
GRPC_REQ = (b"\x83\x86" + b"\x04\x10/demo.Echo/Unary" + lit(b":authority", b"a.test") +
            lit(b"content-type", b"application/grpc") + lit(b"te", b"trailers"))
GRPC_RESP = b"\x88" + lit(b"content-type", b"application/grpc")
GRPC_TRAILERS = lit(b"grpc-status", b"5") + lit(b"grpc-message", b"nope")
SETTINGS = frame(4, 0, 0, struct.pack(">HI", 1, 8192) + struct.pack(">HI", 3, 100))
ACK = frame(4, 1, 0)

client = (SETTINGS + frame(1, 5, 1, GET) + frame(1, 5, 3, GET2) +
          frame(1, 4, 5, GRPC_REQ) + frame(0, 1, 5, b"\0\0\0\0\2hi"))
server = (SETTINGS + ACK + frame(1, 4, 1, RESP) + frame(0, 1, 1, b"hello") +
          frame(1, 5, 3, RESP2) + frame(1, 4, 5, GRPC_RESP) + frame(0, 0, 5, b"\0\0\0\0\1x") +
          frame(1, 5, 5, GRPC_TRAILERS))
padded = frame(1, 0x08 | 0x20 | 0x01, 7, b"\x02" + b"\0\0\0\0\x10" + GET[:4] + b"\0\0") + \
    frame(9, 4, 7, GET[4:])
failures = frame(3, 0, 1, b"\0\0\0\x08") + frame(7, 0, 0, b"\0\0\0\x01\0\0\0\0")

UPGRADED = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
h2c_server = UPGRADED + SETTINGS + frame(1, 4, 1, RESP) + frame(0, 1, 1, b"hello")
h2c_client = PREFACE + SETTINGS + ACK + frame(1, 5, 3, GET2)

seeds = {
    # data[0] bit 2: the connection starts with an HTTP/1.1 h2c upgrade request
    "h2c-client": b"\x34" + chunks(0x80, h2c_server) + chunks(0, h2c_client) +
    chunks(0x80, ACK + frame(1, 5, 3, RESP2)),
    "h2c-server": b"\x35" + chunks(0, h2c_server) + chunks(0x80, h2c_client) +
    chunks(0, ACK + frame(1, 5, 3, RESP2)),
    "client": b"\x30" + chunks(0, client) + chunks(0x80, server),
    "server": b"\x31" + chunks(0x80, client) + chunks(0, server),
    "padded": b"\x30" + chunks(0, SETTINGS + padded) + chunks(0x80, frame(1, 5, 7, RESP)),
    "failures": b"\x30" + chunks(0, client) + chunks(0x80, failures),
    "limit": b"\x00" + chunks(0, client) + chunks(0x80, server),
    "midway": b"\x32" + chunks(0, frame(1, 5, 9, GET)) + chunks(0x80, frame(1, 5, 9, RESP)),
    "gap": b"\x30" + chunks(0, client) + chunks(0x80, SETTINGS + frame(0, 1, 1, b"x" * 300)),
    "close": b"\x30" + chunks(0, client) + b"\x7f" + chunks(0, client) + chunks(0x80, server),
}
for name, data in seeds.items():
    with open(name, "wb") as f:
        f.write(data)
