"""Keep-alive HTTP/1.1 clients for test_lost.py: THREADS connections to
127.0.0.1:PORT, each sending GET /hello one after another for SECONDS, then
closing. Prints "done <requests> <non-200>" and exits.
Usage: burstclient.py PORT THREADS SECONDS"""
import http.client
import sys
import threading
import time


def worker(port, until, counts, lock):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    n = bad = 0
    while time.monotonic() < until:
        c.request("GET", "/hello")
        r = c.getresponse()
        r.read()
        n += 1
        bad += r.status != 200
    c.close()
    with lock:
        counts[0] += n
        counts[1] += bad


def main():
    port, threads, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    until = time.monotonic() + seconds
    counts, lock = [0, 0], threading.Lock()
    ts = [threading.Thread(target=worker, args=(port, until, counts, lock)) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print(f"done {counts[0]} {counts[1]}", flush=True)


if __name__ == "__main__":
    main()
