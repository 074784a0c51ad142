"""Keep-alive client that opens its connection before sonde starts: one
request now, then (after a line on stdin) N more on the same socket.
Usage: kaclient.py PORT N"""
import http.client
import sys

port, n = int(sys.argv[1]), int(sys.argv[2])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
conn.request("GET", "/items/0")
conn.getresponse().read()
print("connected", flush=True)
sys.stdin.readline()
sock = conn.sock
for i in range(1, n + 1):
    conn.request("GET", f"/items/{i}")
    r = conn.getresponse()
    r.read()
    assert r.status == 200
assert conn.sock is sock, "connection was not kept alive"
print("done", flush=True)
