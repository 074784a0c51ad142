"""The agent's memory holding many idle keep-alive connections (issue #14).

Starts nginx and the agent (its defaults: every process traced), reads the
agent's memory with no connection open, then opens CONNS keep-alive
connections to nginx from this process, sends one request on each, reads
the answer and leaves them all open and idle; once the agent has made every
server and client span, reads its memory again. Both ends are on this host,
so the agent tracks 2 x CONNS connections (nginx's and this client's).

Memory, from /proc/<agent>/status and smaps: VmRSS, RssAnon, RssFile,
RssShmem; the BPF ring mappings (anon_inode:bpf-map; the kernel's ring
pages, all resident once mapped) apart from the rest; the heap. Per
connection = (after - before) / connections.

Goals: RSS <= 40 MB at 10,000 idle connections; <= 3 KB of user-space
memory (RssAnon) per idle tracked connection.

Usage: idle_rss.py [--sonde [LABEL=]PATH ...] [--conns 10000] [--rounds 1]
  [-- more agent arguments]. Several --sonde builds (e.g. before/after) run
in turn within each round. Prints a report; exit status 0 unless something
failed to run."""
import argparse
import os
import resource
import selectors
import socket
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402

REQUEST = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
WAVE = 400
RSS_GOAL_MB = 40.0
PER_CONN_GOAL_KB = 3.0
SERVER_H = "http_server_request_duration_seconds_count"
CLIENT_H = "http_client_request_duration_seconds_count"


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem", "Threads"):
                out[k] = int(v.split()[0])
    return out


def smaps(pid):
    """kB resident by kind: bpf-map (BPF maps, the rings among them), heap,
    other anonymous, file-backed (binary and libraries)."""
    kinds = {"bpf_map": 0, "heap": 0, "anon": 0, "file": 0, "other": 0}
    name = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            first = line.split(None, 1)[0]
            if "-" in first and not first.endswith(":"):
                parts = line.split()
                name = parts[5] if len(parts) > 5 else ""
            elif first == "Rss:":
                kb = int(line.split()[1])
                if name.startswith("anon_inode:bpf-map"):
                    kinds["bpf_map"] += kb
                elif name == "[heap]":
                    kinds["heap"] += kb
                elif name == "":
                    kinds["anon"] += kb
                elif name.startswith("/"):
                    kinds["file"] += kb
                else:
                    kinds["other"] += kb
    return kinds


def snapshot(pid):
    s = status(pid)
    s.update(smaps(pid))
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                s["Pss"] = int(line.split()[1])
    return s


def total(m, name, **want):
    return sum(v for (n, labels), v in m.items()
               if n == name and all(dict(labels).get(k, "") == w for k, w in want.items()))


def open_idle(port, conns, deadline):
    """conns keep-alive connections, one request answered on each; returns
    the sockets (left open) and the count of 200 answers."""
    sel = selectors.DefaultSelector()
    socks, ok = [], 0
    pending = {}
    opened = 0
    while (opened < conns or pending) and time.monotonic() < deadline:
        while opened < conns and len(pending) < WAVE:
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            sel.register(s, selectors.EVENT_WRITE)
            pending[s] = None
            opened += 1
        for key, ev in sel.select(1):
            s = key.fileobj
            if pending[s] is None:  # connected
                s.send(REQUEST)
                pending[s] = b""
                sel.modify(s, selectors.EVENT_READ)
                continue
            data = s.recv(4096)
            buf = pending[s] + data
            head, sep, body = buf.partition(b"\r\n\r\n")
            if not data or (sep and len(body) >= 6):
                ok += head.split(b" ", 2)[1] == b"200" if sep else 0
                sel.unregister(s)
                del pending[s]
                socks.append(s)
            else:
                pending[s] = buf
    return socks, ok


def kb(v):
    return "%.1f" % (v / 1024)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sonde", action="append", default=[],
                    help="[LABEL=]PATH of an agent build; repeat to compare builds")
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("args", nargs="*", help="more agent arguments")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("idle_rss: must run as root")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard < a.conns + 200:
        raise SystemExit(f"idle_rss: the descriptor limit ({hard}) does not allow {a.conns} connections")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    builds = []
    for spec in a.sonde or [harness.SONDE]:
        label, eq, path = spec.partition("=")
        if not eq:
            label, path = "agent" if not builds else f"agent{len(builds) + 1}", spec
        if not os.access(path, os.X_OK):
            raise SystemExit(f"idle_rss: {path} is not an executable")
        builds.append((label, os.path.abspath(path)))
    nginx = harness.Nginx(locations='        location = /hello { return 200 "hello\\n"; }\n',
                          connections=a.conns + a.conns // 2)
    port = nginx.port
    rows = []
    for r, (label, path) in ((r, b) for r in range(1, a.rounds + 1) for b in builds):
        harness.SONDE = path
        agent = harness.Agent(*a.args, print_spans=False)
        pid = agent.proc.pid
        time.sleep(a.settle)
        m0 = agent.metrics()
        before = snapshot(pid)
        t0 = time.monotonic()
        socks, ok = open_idle(port, a.conns, time.monotonic() + 120)
        opened = time.monotonic() - t0
        if ok != a.conns:
            raise SystemExit(f"idle_rss: {ok} of {a.conns} connections answered 200")
        want_s = total(m0, SERVER_H, server_port=str(port)) + a.conns
        want_c = total(m0, CLIENT_H, server_port=str(port)) + a.conns
        harness.wait_until("every span of the idle connections", lambda: (
            lambda m: total(m, SERVER_H, server_port=str(port)) >= want_s
            and total(m, CLIENT_H, server_port=str(port)) >= want_c)(agent.metrics()),
            timeout=60, fatal=False)
        time.sleep(a.settle)
        m1 = agent.metrics()
        after = snapshot(pid)
        tracked = total(m1, "sonde_connections_tracked")
        spans_s = total(m1, SERVER_H, server_port=str(port)) - total(m0, SERVER_H, server_port=str(port))
        spans_c = total(m1, CLIENT_H, server_port=str(port)) - total(m0, CLIENT_H, server_port=str(port))
        drops = total(m1, "sonde_ringbuf_drops_total") - total(m0, "sonde_ringbuf_drops_total")
        evicted = total(m1, "sonde_connections_evicted_total") - total(m0, "sonde_connections_evicted_total")
        for s in socks:
            s.close()
        rc = agent.stop()
        if rc != 0:
            raise SystemExit(f"idle_rss: the agent exited with {rc}")
        rows.append(dict(round=r, label=label, before=before, after=after, tracked=tracked, opened=opened,
                         spans_s=spans_s, spans_c=spans_c, drops=drops, evicted=evicted))
        print(f"idle_rss: round {r}/{a.rounds} {label}: {a.conns} connections opened in {opened:.2f} s, "
              f"tracked {tracked:.0f}, VmRSS {kb(before['VmRSS'])} -> {kb(after['VmRSS'])} MiB",
              file=sys.stderr, flush=True)
        time.sleep(1)

    n = a.conns
    print(f"RSS at {n} idle keep-alive connections (agent arguments: {' '.join(a.args) or 'defaults'};"
          f" nginx and this client both traced; {a.rounds} round{'s' if a.rounds > 1 else ''})")
    for label, path in builds:
        print(f"  {label}: {path}")
    print("  each connection: one GET answered, then idle; figures read "
          f"{a.settle:.0f} s after the last span (VmHWM: peak over the agent's life, the burst included)")
    print("  %-5s %-7s %-7s %8s %8s %8s %8s %8s %8s %9s %8s %8s %8s" % (
        "round", "build", "conns", "VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem", "Pss", "bpf-maps",
        "heap", "anon", "file"))
    for x in rows:
        for lbl, s in (("0", x["before"]), (str(n), x["after"])):
            print("  %-5s %-7s %-7s %8s %8s %8s %8s %8s %8s %9s %8s %8s %8s" % (
                x["round"], x["label"], lbl, kb(s["VmRSS"]), kb(s["VmHWM"]), kb(s["RssAnon"]), kb(s["RssFile"]),
                kb(s["RssShmem"]), kb(s["Pss"]), kb(s["bpf_map"]), kb(s["heap"]), kb(s["anon"]), kb(s["file"])))
    print("  (MiB; bpf-maps: the BPF ring and map mappings, kernel pages counted in RssFile;"
          " heap: brk heap; anon: other anonymous mappings, malloc's mmap arenas and large blocks)")
    med = statistics.median
    for label, _ in builds:
        rs = [x for x in rows if x["label"] == label]
        summary(label, rs, n, med)


def summary(label, rows, n, med):
    rss10k = med([x["after"]["VmRSS"] for x in rows])
    rss0 = med([x["before"]["VmRSS"] for x in rows])
    hwm = max(x["after"]["VmHWM"] for x in rows)
    ring = med([x["after"]["bpf_map"] for x in rows])
    tracked = med([x["tracked"] for x in rows])
    d_rss = med([x["after"]["VmRSS"] - x["before"]["VmRSS"] for x in rows])
    d_anon = med([x["after"]["RssAnon"] - x["before"]["RssAnon"] for x in rows])
    print(f"  {label} (medians):")
    print("    tracked connections (sonde_connections_tracked): %.0f; spans server %s, client %s;"
          " ring drops %s; evicted %s" % (
              tracked, "/".join("%.0f" % x["spans_s"] for x in rows),
              "/".join("%.0f" % x["spans_c"] for x in rows),
              "/".join("%.0f" % x["drops"] for x in rows), "/".join("%.0f" % x["evicted"] for x in rows)))
    print("    VmRSS %.1f MiB at 0 connections, %.1f MiB at %d (peak VmHWM %.1f MiB)" % (
        rss0 / 1024, rss10k / 1024, n, hwm / 1024))
    print("    per connection: VmRSS +%.0f B per TCP connection, +%.0f B per tracked connection;"
          " user space (RssAnon) +%.0f B per tracked connection" % (
              d_rss * 1024 / n, d_rss * 1024 / max(tracked, 1), d_anon * 1024 / max(tracked, 1)))
    per = d_anon / max(tracked, 1)
    print("    goal: <= %.0f KB of user-space memory per idle tracked connection: %.2f KB -> %s" % (
        PER_CONN_GOAL_KB, per, "met" if per <= PER_CONN_GOAL_KB else "MISSED"))
    print("    goal: RSS <= %.0f MB at %d idle connections: %.1f MB (%.1f MiB; %.1f MiB of it BPF map"
          " mappings, %.1f MiB without) -> %s" % (
              RSS_GOAL_MB, n, rss10k * 1024 / 1e6, rss10k / 1024, ring / 1024, (rss10k - ring) / 1024,
              "met" if rss10k * 1024 / 1e6 <= RSS_GOAL_MB else "MISSED"))


if __name__ == "__main__":
    main()
