"""The bench's Prometheus-like scraper: N scrapes of /metrics over one kept
HTTP/1.1 connection, as Prometheus scrapes a target, with
"Accept-Encoding: gzip" as Prometheus sends it, or "identity".
    scrape_client.py PORT N gzip|identity OUT_FILE
Writes the last body (decompressed) to OUT_FILE; prints one line:
wall ms of each scrape (comma-separated), the last body's bytes on the
wire, and how many times the server closed the connection."""
import http.client
import sys
import time
import zlib

port, n, enc, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
walls, wire, closed, body = [], 0, 0, b""
for _ in range(n):
    t0 = time.perf_counter()
    conn.request("GET", "/metrics", headers={"Accept-Encoding": enc})
    r = conn.getresponse()
    body = r.read()
    walls.append((time.perf_counter() - t0) * 1e3)
    if r.status != 200:
        sys.exit(f"scrape_client: HTTP {r.status} from port {port}")
    wire = len(body)
    if r.getheader("Content-Encoding") == "gzip":
        body = zlib.decompress(body, 31)
    closed += r.will_close
with open(out, "wb") as f:
    f.write(body)
print(",".join("%.3f" % w for w in walls), wire, closed)
