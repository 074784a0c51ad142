"""Integration: sonde's real BPF programs against nginx (nginx-light) and
Python's http.server, driven by curl and Python clients on 127.0.0.1.
Asserts exact request counts per label set on /metrics, routes, statuses,
latency buckets, --print spans output, a keep-alive connection opened
before the agent, promtool validity, and a clean detach."""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Agent, Nginx, ROOT, check, check_eq, exe_name, finish, free_port,  # noqa: E402
                     http_status, series, socket_tier_expected, spawn, wait_until)

HERE = os.path.dirname(os.path.abspath(__file__))
SOCKET_TIER = socket_tier_expected()
SERVER_H = "http_server_request_duration_seconds"
CLIENT_H = "http_client_request_duration_seconds"


def main():
    if os.geteuid() != 0:
        raise SystemExit("FAIL: the integration tests load BPF programs and must run as root")

    # Started before the agent: a Python server and a keep-alive client that
    # already made a request on its connection.
    py_port = free_port()
    pysrv = spawn([sys.executable, os.path.join(HERE, "pyserver.py"), str(py_port)],
                  stdout=subprocess.PIPE, text=True)
    check_eq(pysrv.stdout.readline().strip(), "ready", "python server started")
    ka = spawn([sys.executable, os.path.join(HERE, "kaclient.py"), str(py_port), "3"],
               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    check_eq(ka.stdout.readline().strip(), "connected", "keep-alive client connected before agent")

    print("== starting sonde", flush=True)
    agent = Agent()
    nginx = Nginx()  # after the agent: its connections are seen from accept()
    ng, py_svc = nginx.url, exe_name(pysrv.pid)
    me = exe_name(os.getpid())
    print(f"   sonde :{agent.port}  nginx :{nginx.port}  python {py_svc} :{py_port}", flush=True)

    # The readiness probes above made requests; count from here on by
    # using routes nobody else uses, and snapshot counts of the shared ones.
    # Records reach /metrics within one drain (1 ms horizon, 25 ms tick):
    # take the baseline once two scrapes 100 ms apart agree.
    def request_counts(m):
        return {k: v for k, v in m.items() if k[0] in (SERVER_H + "_count", CLIENT_H + "_count")
                and dict(k[1]).get("http_route") not in ("/metrics", "/healthz")}

    def settled():
        a = agent.metrics()
        time.sleep(0.1)
        b = agent.metrics()
        return b if request_counts(a) == request_counts(b) else None
    before = wait_until("quiet baseline", settled)

    print("== driving traffic", flush=True)
    ka.stdin.write("go\n")
    ka.stdin.flush()
    check_eq(ka.stdout.readline().strip(), "done", "keep-alive client finished")

    # One curl process, one keep-alive connection: 5 + 3 + 2 + 4 requests.
    urls = ([f"{ng}/"] * 5 + [f"{ng}/missing"] * 3 + [f"{ng}/error"] * 2 +
            [f"{ng}/users/{i}" for i in (17, 23, 42)] + [f"{ng}/users/7?debug=1"])
    out = subprocess.run(["curl", "-s", "-w", "%{http_code} %{num_connects}\n",
                          *[a for u in urls for a in ("-o", "/dev/null", u)]],
                         capture_output=True, text=True, timeout=30).stdout.split("\n")
    codes = [l.split()[0] for l in out if l]
    check_eq(codes, ["200"] * 5 + ["404"] * 3 + ["500"] * 2 + ["200"] * 4, "curl statuses")
    r = subprocess.run(["curl", "-s", "-I", "-o", "/dev/null", "-w", "%{http_code}", f"{ng}/"],
                       capture_output=True, text=True, timeout=30)
    check_eq(r.stdout, "200", "curl HEAD")
    # IPv6: two requests over ::1 to the same nginx.
    r = subprocess.run(["curl", "-s", "-g", "-w", "%{http_code}\n",
                        *[a for _ in range(2) for a in ("-o", "/dev/null", f"http://[::1]:{nginx.port}/users/99")]],
                       capture_output=True, text=True, timeout=30)
    check_eq(r.stdout.split(), ["200", "200"], "curl over IPv6")

    # Python client (urllib, this process) against the Python server.
    for _ in range(3):
        check_eq(http_status(f"http://127.0.0.1:{py_port}/hello"), 200, "GET /hello")
    for _ in range(2):
        check_eq(http_status(f"http://127.0.0.1:{py_port}/slow"), 200, "GET /slow")
    check_eq(http_status(f"http://127.0.0.1:{py_port}/boom"), 500, "GET /boom")
    for i in range(2):
        req = urllib.request.Request(f"http://127.0.0.1:{py_port}/echo", data=b"x" * (100 + i), method="POST")
        with urllib.request.urlopen(req, timeout=5) as resp:
            check_eq(resp.status, 201, "POST /echo")

    # A client that reads the response head and exits without close(2): its
    # sockets are closed by the kernel at exit, so only the process-exit
    # hook can end its span.
    early = subprocess.run([sys.executable, "-c", (
        "import os, socket\n"
        f"s = socket.create_connection(('127.0.0.1', {py_port}))\n"
        "s.sendall(b'GET /exit-early HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\n"
        "d = b''\n"
        "while b'\\r\\n\\r\\n' not in d:\n"
        "    d += s.recv(4096)\n"
        "print(d.split(b' ')[1].decode(), flush=True)\n"
        "os._exit(0)\n")], capture_output=True, text=True, timeout=30)
    check_eq(early.stdout.strip(), "404", "early-exit client got its status")

    # (method, status, route, count, error_type of the server series, of the
    # client series): a 4xx is the client's error only, a 5xx both sides'
    nginx_server = [
        ("GET", "200", "/", 5, "", ""), ("GET", "404", "/missing", 3, "", "404"),
        ("GET", "500", "/error", 2, "500", "500"), ("GET", "200", "/users/{id}", 6, "", ""),
        ("HEAD", "200", "/", 1, "", "")]
    py_server = [
        ("GET", "200", "/hello", 3, "", ""), ("GET", "200", "/slow", 2, "", ""),
        ("GET", "500", "/boom", 1, "500", "500"), ("POST", "201", "/echo", 2, "", ""),
        ("GET", "200", "/items/{id}", 3, "", ""), ("GET", "404", "/exit-early", 1, "", "404")]

    def server_count(m, method, status, route, error_type, svc, port):
        v = series(m, SERVER_H + "_count", http_request_method=method, http_response_status_code=status,
                   http_route=route, service_name=svc, server_port=str(port), error_type=error_type)
        return v or 0

    def client_count(m, method, status, route, error_type, svc, port):
        v = series(m, CLIENT_H + "_count", http_request_method=method, http_response_status_code=status,
                   http_route=route, service_name=svc, server_address="127.0.0.1", server_port=str(port),
                   error_type=error_type)
        return v or 0

    def client_count_v6(m, method, status, route, error_type, svc, port):
        v = series(m, CLIENT_H + "_count", http_request_method=method, http_response_status_code=status,
                   http_route=route, service_name=svc, server_address="::1", server_port=str(port),
                   error_type=error_type)
        return v or 0

    def delta(m, fn, *key):
        return fn(m, *key) - fn(before, *key)

    expected = ([(server_count, (me_, st, rt, se, "nginx", nginx.port), n) for me_, st, rt, n, se, _ in nginx_server] +
                [(client_count, (me_, st, rt, ce, "curl", nginx.port), n - 2 if rt == "/users/{id}" else n)
                 for me_, st, rt, n, _, ce in nginx_server] +
                [(client_count_v6, ("GET", "200", "/users/{id}", "", "curl", nginx.port), 2)] +
                [(server_count, (me_, st, rt, se, py_svc, py_port), n) for me_, st, rt, n, se, _ in py_server] +
                [(client_count, (me_, st, rt, ce, me, py_port), n) for me_, st, rt, n, _, ce in py_server])

    def all_seen():
        m = agent.metrics()
        return m if all(delta(m, fn, *key) >= n for fn, key, n in expected) else None

    wait_until("all requests on /metrics", all_seen, timeout=15, fatal=False)
    time.sleep(0.5)  # anything extra that would make counts inexact lands now
    m = agent.metrics()

    print("== exact counts per label set", flush=True)
    for fn, key, n in expected:
        kind = "server" if fn is server_count else "client"
        check_eq(delta(m, fn, *key), n, f"{kind} {key}")

    # The 200 ms handler: both slow requests lie in (0.1, 0.25].
    slow = dict(http_request_method="GET", http_response_status_code="200", http_route="/slow",
                service_name=py_svc, server_port=str(py_port), error_type="")
    check_eq(series(m, SERVER_H + "_bucket", le="0.1", **slow), 0.0, "/slow not under 100 ms")
    check_eq(series(m, SERVER_H + "_bucket", le="0.25", **slow), 2.0, "/slow under 250 ms")
    s = series(m, SERVER_H + "_sum", **slow)
    check(s is not None and 0.4 <= s < 0.5, f"/slow sum {s} in [0.4, 0.5)")

    # Raw ids never reach labels.
    check(not any(dict(k[1]).get("http_route", "").startswith("/users/1") for k in m),
          "no raw /users/<n> route label")

    print("== health and probe info", flush=True)
    for key, v in m.items():
        if key[0] == "sonde_probe_info":
            lab = dict(key[1])
            if lab["hook"].startswith("sys_"):
                check_eq((lab["mode"], v), ("tracepoint", 1.0), f"hook {lab['hook']}")
            elif lab["hook"] in ("sockops", "sk_msg"):  # traceparent injection
                check_eq((lab["mode"], v), ({"sockops": "cgroup", "sk_msg": "sockhash"}[lab["hook"]],
                                            1.0), f"hook {lab['hook']}")
            elif lab["hook"] == "ssl_read_write":  # OpenSSL uprobes (test_tls.py)
                check_eq((lab["mode"], v), ("uprobe", 1.0), f"hook {lab['hook']}")
            elif lab["hook"] == "payload_capture":  # the capture tier
                check_eq((lab["mode"], v), ("socket" if SOCKET_TIER else "syscall", 1.0),
                         "capture tier in sonde_probe_info")
            elif lab["hook"] == "iter/task":  # run-queue wait, read at scrape
                check_eq((lab["mode"], v), ("iterator", 1.0), f"hook {lab['hook']}")
            elif SOCKET_TIER and lab["hook"] in ("sock_send_length", "sock_recv_length",
                                                 "inet_sock_set_state", "tcp_destroy_sock"):
                check_eq((lab["mode"], v), ("tp_btf", 1.0), f"hook {lab['hook']}")
            else:
                check(lab["mode"] in ("fentry", "kprobe", "tracepoint", "tp_btf") and v == 1.0,
                      f"hook {lab['hook']} mode {lab['mode']}")
                if lab["mode"] in ("tracepoint", "tp_btf") and lab["hook"] in ("tcp_sendmsg", "tcp_recvmsg"):
                    print(f"   note: {lab['hook']}: fentry/kprobe unavailable on this kernel; "
                          f"bytes counted at the capture hooks ({lab['mode']}; those modes are "
                          f"exercised on a kernel that has them, not here)", flush=True)
    hooks = {dict(k[1])["hook"] for k in m if k[0] == "sonde_probe_info"}
    if SOCKET_TIER:
        # No syscall tracepoint at all: enabling any of them puts every
        # syscall of every task on the host on the slow path.
        check_eq(sorted(h for h in hooks if "sys_enter" in h or "sys_exit" in h), [],
                 "socket tier: no syscall tracepoint attached")
        check({"sock_send_length", "sock_recv_length", "inet_sock_set_state", "tcp_destroy_sock"} <= hooks,
              "socket-tier hooks")
        # What the kernel says the agent attached (perf-event links of its fds).
        perf = json.loads(subprocess.run(["bpftool", "-j", "perf", "show"], capture_output=True,
                                         text=True).stdout or "[]")
        mine = [e.get("tracepoint", e.get("func", "?")) for e in perf if e.get("pid") == agent.proc.pid]
        check_eq([t for t in mine if t.startswith("sys_")], [],
                 "socket tier: the kernel lists no syscall tracepoint of the agent")
    else:
        for sc in ("read", "write", "readv", "writev", "recvfrom", "sendto", "recvmsg", "sendmsg",
                   "connect", "sendfile64"):
            check(f"sys_enter_{sc}" in hooks and f"sys_exit_{sc}" in hooks, f"hooks for {sc}")
        check({"sys_exit_accept", "sys_exit_accept4", "sys_enter_close"} <= hooks,
              "accept/close hooks")
    check_eq(series(m, "sonde_ringbuf_drops_total", ring="events"), 0.0, "no ring drops")
    check((series(m, "sonde_ringbuf_events_total", ring="events") or 0) > 0, "events counted")
    check((series(m, "process_network_io_bytes_total", service_name="nginx",
                  network_io_direction="transmit") or 0) > 0, "nginx bytes sent counted")

    print("== promtool check metrics", flush=True)
    text = agent.metrics_text()
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    # Exit 1 = the text does not parse; 3 = lint findings only. node_exporter's
    # own names (node_memory_MemTotal_bytes, ..._bits) fail promtool's naming
    # lint and must stay as they are for dashboards; test_node_exporter.py
    # checks they are exactly node_exporter's. Anything else must be clean.
    findings = [l for l in (r.stdout + r.stderr).splitlines() if l.strip()]
    check(r.returncode in (0, 3), f"promtool parses the page (exit {r.returncode}): {findings[:3]}")
    check_eq([l for l in findings if not l.startswith("node_")], [],
             "no promtool finding outside node_exporter's own names")
    r = subprocess.run(["promtool", "check", "metrics"], capture_output=True, text=True,
                       input="\n".join(l for l in text.splitlines()
                                  if not (l.split("{")[0].split(" ")[0].startswith("node_")
                                          or l.startswith(("# HELP node_", "# TYPE node_")))) + "\n")
    check_eq((r.returncode, r.stdout + r.stderr), (0, ""), "promtool: sonde's own families lint-clean")

    print("== --print spans", flush=True)
    spans = agent.spans()
    ng_users = [s for s in spans if s["service"] == "nginx" and s["route"] == "/users/{id}"]
    check_eq(sorted(s["target"] for s in ng_users),
             ["/users/17", "/users/23", "/users/42", "/users/7?debug=1", "/users/99", "/users/99"],
             "nginx /users spans (targets)")
    check_eq(sorted({(s["kind"], s["method"], s["status"], s["local_addr"], s["local_port"], s["peer_addr"])
                     for s in ng_users}),
             [("server", "GET", 200, "127.0.0.1", nginx.port, "127.0.0.1"),
              ("server", "GET", 200, "::1", nginx.port, "::1")], "nginx /users span fields (IPv4 and IPv6)")
    curl_err = [s for s in spans if s["comm"] == "curl" and s["target"] == "/error"]
    check_eq([(s["kind"], s["status"], s["peer_port"]) for s in curl_err], [("client", 500, nginx.port)] * 2,
             "curl /error client spans")
    slow_spans = [s for s in spans if s["kind"] == "server" and s["target"] == "/slow"]
    check_eq(len(slow_spans), 2, "two /slow server spans")
    check(all(200.0 <= s["duration_ms"] < 250.0 for s in slow_spans),
          f"/slow durations {[s['duration_ms'] for s in slow_spans]} in [200, 250) ms")
    items = [s for s in spans if s["route"] == "/items/{id}"]
    check_eq(sorted((s["kind"], s["target"]) for s in items),
             sorted([("server", f"/items/{i}") for i in (1, 2, 3)] + [("client", f"/items/{i}") for i in (1, 2, 3)]),
             "pre-existing keep-alive connection: items 1..3 seen on both sides, item 0 (before agent) not")
    check(all(s["pid"] == ka.pid for s in items if s["kind"] == "client"), "keep-alive client pid")
    bad = [s for s in spans if not (s["duration_ms"] >= 0 and s["start_unix_nano"] > 1.7e18)]
    check_eq(bad, [], "span times sane")

    print("== filters: --port and --comm", flush=True)
    # This one runs the syscall tier and keeps syscall arguments in the hash
    # map (the fallback for kernels that refuse task storage), so both tiers
    # and both stores carry real traffic with the same expected spans.
    filt = Agent("--port", str(nginx.port), "--syscall-args", "hash", "--attach-mode", "tracepoint",
                 name="filtered agent")
    by_comm = Agent("--comm", "curl", name="comm-filtered agent")
    subprocess.run(["curl", "-s", "-o", "/dev/null", f"{ng}/users/1", "-o", "/dev/null", f"{ng}/missing"],
                   timeout=30)
    http_status(f"http://127.0.0.1:{py_port}/hello")
    wait_until("filtered spans", lambda: len([s for s in filt.spans() if s["service"] == "nginx"]) >= 2)
    time.sleep(0.3)
    fs = filt.spans()
    check_eq(sorted((s["kind"], s["comm"], s["target"], s["status"]) for s in fs),
             sorted([("server", "nginx", "/users/1", 200), ("server", "nginx", "/missing", 404),
                     ("client", "curl", "/users/1", 200), ("client", "curl", "/missing", 404)]),
             "--port keeps exactly the nginx connections")
    print("== syscall-args entries of dead threads are collected", flush=True)
    # A thread that dies inside a syscall never reaches its exit hook; plant
    # such an entry (tgid/tid that cannot exist) and wait for the sweep.
    mid = filt.map_id("args")
    check(mid is not None, "filtered agent's args map found")
    if mid is not None:
        ghost = (4194300 << 32 | 4194301).to_bytes(8, "little")
        before_gc = series(filt.metrics(), "sonde_syscall_args_collected_total") or 0
        subprocess.run(["bpftool", "map", "update", "id", str(mid), "key", *[str(b) for b in ghost],
                        "value", *["0"] * 40], check=True)
        wait_until("args sweep", lambda: (series(filt.metrics(), "sonde_syscall_args_collected_total") or 0)
                   > before_gc, timeout=12, fatal=False)
        check_eq((series(filt.metrics(), "sonde_syscall_args_collected_total") or 0) - before_gc, 1.0,
                 "exactly the planted entry was collected")
        r = subprocess.run(["bpftool", "map", "lookup", "id", str(mid), "key", *[str(b) for b in ghost]],
                           capture_output=True, text=True)
        check(r.returncode != 0, "planted entry gone from the map")

    check_eq(filt.stop(), 0, "filtered agent exit status")
    cs = by_comm.spans()
    check_eq(sorted((s["kind"], s["comm"], s["target"]) for s in cs),
             [("client", "curl", "/missing"), ("client", "curl", "/users/1")], "--comm curl keeps only curl's spans")
    check_eq(by_comm.stop(), 0, "comm-filtered agent exit status")

    print("== --attach-mode forced", flush=True)
    for mode in ("fentry", "kprobe"):
        p = spawn([os.path.join(ROOT, "build", "sonde"), "--attach-mode", mode, "--listen", "none",
                   "--allow-second-agent"],  # the first agent still runs
                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            _, err = p.communicate(timeout=8)
            errors = [json.loads(l) for l in err.splitlines() if '"@level":"error"' in l]
            check_eq(p.returncode, 1, f"--attach-mode={mode} exits 1 where unavailable")
            check(any(e.get("hook") == "tcp_sendmsg" and f"--attach-mode={mode} is not available" in e["@message"]
                      for e in errors), f"--attach-mode={mode} error names the hook and the limitation: {errors}")
            print(f"   note: {mode} unavailable on this kernel, as reported: "
                  f"{errors[0]['error'] if errors else '?'}", flush=True)
        except subprocess.TimeoutExpired:
            # The kernel has this mode: the agent is running with it.
            p.send_signal(signal.SIGINT)
            _, err = p.communicate(timeout=15)
            check(f'"mode":"{mode}"' in err, f"--attach-mode={mode} attached where available")
    forced = Agent("--attach-mode", "tracepoint", name="tracepoint-mode agent")
    fm = forced.metrics()
    check_eq(series(fm, "sonde_probe_info", hook="tcp_sendmsg", mode="tracepoint"), 1.0,
             "--attach-mode=tracepoint reported in sonde_probe_info")
    check_eq(forced.stop(), 0, "tracepoint-mode agent exit status")

    print("== clean detach on SIGINT", flush=True)
    check_eq(agent.stop(), 0, "agent exit status after SIGINT")
    links = subprocess.run(["bpftool", "-j", "link", "list"], capture_output=True, text=True).stdout
    progs = subprocess.run(["bpftool", "-j", "prog", "list"], capture_output=True, text=True).stdout
    # Other agents (other test suites on this host) may be running now: a
    # program counts as left over only if no other live process holds it.
    left = [pr for pr in json.loads(progs or "[]") if pr.get("name") in ("tp_exit_read", "tp_enter_close")
            and all(o.get("pid") == agent.proc.pid for o in pr.get("pids", []))]
    check(left == [], f"no sonde programs left loaded: {left}")
    check("tp_exit_read" not in links, "no sonde links left")
    check(not os.path.exists("/sys/fs/bpf/sonde"), "nothing pinned")
    logs = agent.log_records()
    check(all({"@timestamp", "@level", "@message"} <= set(r) for r in logs) and len(logs) >= 3,
          "logs are JSON lines with @timestamp/@level/@message")
    check(any(r["@message"] == "sonde stopped" for r in logs), "stop logged")
    def store(a):
        return [r.get("syscall_args") for r in a.log_records() if r["@message"] == "socket tracer attached"]
    check_eq(store(filt), ["hash"], "filtered agent keeps syscall args in the hash (forced)")
    if SOCKET_TIER:  # arguments come from the saved registers when the socket call ends
        check_eq(store(agent), ["registers"], "socket tier keeps no syscall arguments")
    else:  # task storage loads in tracepoint programs on this kernel (6.18) and on 6.1
        check_eq(store(agent), ["task_storage"], "auto picks task-local storage where the kernel allows it")
    finish("test_http")


if __name__ == "__main__":
    main()
