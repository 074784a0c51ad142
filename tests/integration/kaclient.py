"""Keep-alive client that opens its connection before sonde starts: one
request now, then (after a line on stdin) N more on the same socket.
Usage: kaclient.py PORT N [DELAY [PREFIX]]: DELAY seconds between the
later requests (default 0), paths PREFIX0, PREFIX1, ... (default /items/)."""
import http.client
import sys
import time

port, n = int(sys.argv[1]), int(sys.argv[2])
delay = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
prefix = sys.argv[4] if len(sys.argv) > 4 else "/items/"
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
conn.request("GET", f"{prefix}0")
conn.getresponse().read()
print("connected", flush=True)
sys.stdin.readline()
sock = conn.sock
for i in range(1, n + 1):
    if i > 1:
        time.sleep(delay)
    conn.request("GET", f"{prefix}{i}")
    r = conn.getresponse()
    r.read()
    assert r.status == 200
assert conn.sock is sock, "connection was not kept alive"
print("done", flush=True)
