"""Shared pieces of sonde's integration tests: start the real agent, real
servers on 127.0.0.1, scrape /metrics, and assert exact values.

Every wait is bounded; every process started here is stopped at exit."""
import atexit
import json
import resource
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SONDE = os.path.join(ROOT, "build", "sonde")
ATTACH_MODE = os.environ.get("SONDE_TEST_ATTACH_MODE", "")


def socket_tier_expected():
    """Whether agents started by Agent() capture at the socket-level hooks
    (tp_btf/sock_*_length: Linux 6.3+, not forced to syscall tracepoints)."""
    return ATTACH_MODE != "tracepoint" and kernel_has_socket_tier()


def kernel_has_socket_tier():
    """Whether this kernel has the socket-level capture tracepoints."""
    try:
        out = subprocess.run(["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux"],
                             capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "'btf_trace_sock_send_length'" in out and "'btf_trace_sock_recv_length'" in out

_procs = []
_failures = []
_checks = [0]


def cleanup():
    for p in reversed(_procs):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


atexit.register(cleanup)


def spawn(args, **kw):
    p = subprocess.Popen(args, **kw)
    _procs.append(p)
    return p


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, fn, timeout=15.0, interval=0.1, fatal=True):
    """Polls fn() until it returns a truthy value; after timeout fails the
    test (fatal) or returns None so the caller's exact checks show why."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except OSError as e:  # server not up yet
            last = e
        time.sleep(interval)
    if not fatal:
        print(f"  note: timed out after {timeout}s waiting for {what}", flush=True)
        return None
    raise SystemExit(f"FAIL: timed out after {timeout}s waiting for {what} (last: {last!r})")


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def http_status(url):
    try:
        return http_get(url)[0]
    except urllib.error.HTTPError as e:
        return e.code


def exe_name(pid):
    """sonde names a service after the executable's basename."""
    return os.path.basename(os.readlink(f"/proc/{pid}/exe"))


# ---- assertions ----

def check(cond, msg):
    _checks[0] += 1
    if not cond:
        _failures.append(msg)
        print(f"  FAIL: {msg}", flush=True)


def check_eq(got, want, msg):
    _checks[0] += 1
    if got != want:
        _failures.append(f"{msg}: got {got!r}, want {want!r}")
        print(f"  FAIL: {msg}: got {got!r}, want {want!r}", flush=True)


def finish(name):
    print(f"{name}: {_checks[0]} checks, {len(_failures)} failed", flush=True)
    cleanup()
    sys.exit(1 if _failures else 0)


# ---- Prometheus text ----

_line = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
_label = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """{(name, frozenset(labels.items())): float}"""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _line.match(line)
        if not m:
            raise ValueError(f"unparsable metrics line: {line!r}")
        labels = {}
        if m.group(3):
            for k, v in _label.findall(m.group(3)):
                labels[k] = v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(4))
    return out


def series(metrics, name, **labels):
    """Value of the one series of name whose labels are exactly labels.
    A label with an empty value is the same as no such label (Prometheus
    treats them alike), on both sides: identity labels such as
    service_namespace are empty for processes outside any namespace."""
    want = frozenset((k, v) for k, v in labels.items() if v != "")
    hit = metrics.get((name, frozenset(labels.items())))
    if hit is not None:
        return hit
    for (n, ls), v in metrics.items():
        if n == name and frozenset((k, x) for k, x in ls if x != "") == want:
            return v
    return None


# ---- the agent ----

_agents = []


def agent_running():
    """Whether an agent this test started is still running: sonde allows one
    per host (/run/sonde/agent.lock), so another needs --allow-second-agent."""
    return any(a.proc.poll() is None for a in _agents)


class Agent:
    def __init__(self, *args, print_spans=True, name="agent"):
        self.port = free_port()  # --listen is set here; do not pass it in args
        self.dir = tempfile.mkdtemp(prefix="sonde-test-")
        self.spans_path = os.path.join(self.dir, "spans.jsonl")
        self.log_path = os.path.join(self.dir, "sonde.log")
        cmd = [SONDE, "--listen", f"127.0.0.1:{self.port}", *args]
        # SONDE_TEST_ATTACH_MODE=tracepoint runs a whole suite in the syscall
        # capture tier (make integration-syscall-tier); a test's own
        # --attach-mode wins.
        if ATTACH_MODE and "--attach-mode" not in args:
            cmd += ["--attach-mode", ATTACH_MODE]
        # Tests that run several agents at once: the later ones inject nothing.
        if agent_running() and "--allow-second-agent" not in args:
            cmd.append("--allow-second-agent")
        if print_spans:
            cmd += ["--print", "spans"]
        self.out = open(self.spans_path, "w")
        self.err = open(self.log_path, "w")
        self.proc = spawn(cmd, stdout=self.out, stderr=self.err)
        _agents.append(self)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_until(f"{name} /healthz 200", lambda: self._healthy(), timeout=30)

    def _healthy(self):
        if self.proc.poll() is not None:
            raise SystemExit(f"FAIL: sonde exited with {self.proc.returncode}:\n{self.log()}")
        return http_status(self.url + "/healthz") == 200

    def metrics_text(self):
        return http_get(self.url + "/metrics")[1].decode()

    def metrics(self):
        return parse_metrics(self.metrics_text())

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def log_records(self):
        return [json.loads(l) for l in self.log().splitlines() if l.startswith("{")]

    def spans(self):
        """Every complete line: the agent may be halfway through writing the
        last one (stdio flushes in blocks), which is left for the next call."""
        self.out.flush()
        with open(self.spans_path) as f:
            return [json.loads(l) for l in f if l.endswith("\n") and l.strip()]

    def map_id(self, name):
        """Id of the agent's BPF map called name (from its fds' fdinfo)."""
        for fd in os.listdir(f"/proc/{self.proc.pid}/fdinfo"):
            try:
                with open(f"/proc/{self.proc.pid}/fdinfo/{fd}") as f:
                    info = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
            except OSError:
                continue
            if "map_id" in info:
                mid = info["map_id"].strip()
                out = subprocess.run(["bpftool", "-j", "map", "show", "id", mid],
                                     capture_output=True, text=True).stdout
                if out and json.loads(out).get("name") == name:
                    return int(mid)
        return None

    def stop(self):
        """SIGINT, as an operator would; returns the exit status."""
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return "hung"


# ---- real servers ----

NGINX_CONF = """
user root;
worker_processes 1;
worker_rlimit_nofile {nofile};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    default_type text/html;
    keepalive_timeout 30s;
    keepalive_requests 10000;
    sendfile on;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
{listen}
        root {dir}/www;
        location = /error {{ return 500; }}
        location /users/ {{ return 200 "user\\n"; }}
{locations}
    }}
}}
"""

PLAIN_LISTEN = "        listen 127.0.0.1:{port};\n        listen [::1]:{port};"
TLS_LISTEN = ("        listen 127.0.0.1:{port} ssl;\n"
              "        ssl_certificate {cert};\n        ssl_certificate_key {key};")


def nginx_conf(directory, port, cert=None, key=None, locations="", connections=256):
    """nginx.conf text: plain HTTP on 127.0.0.1 and ::1, or HTTPS on 127.0.0.1;
    locations: more location blocks for the server (e.g. a proxy_pass);
    connections: worker_connections (its descriptors are raised to match)."""
    listen = (TLS_LISTEN.format(port=port, cert=cert, key=key) if cert
              else PLAIN_LISTEN.format(port=port))
    return NGINX_CONF.format(dir=directory, port=port, listen=listen, locations=locations,
                             connections=connections,
                             nofile=min(connections + 64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


class Nginx:
    """nginx-light on a free port; with tls, HTTPS (HTTP/1.1 only: no http2)
    with a self-signed certificate."""

    def __init__(self, tls=False, locations="", connections=256):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="sonde-nginx-tls-" if tls else "sonde-nginx-")
        os.makedirs(os.path.join(self.dir, "www"))
        with open(os.path.join(self.dir, "www", "index.html"), "w") as f:
            f.write("<html><body>" + ("sonde tls page " if tls else "sonde test page ") * 30
                    + "</body></html>\n")
        cert, key = make_cert(self.dir) if tls else (None, None)
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(nginx_conf(self.dir, self.port, cert, key, locations, connections))
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = spawn([nginx, "-c", conf, "-p", self.dir, "-e", os.path.join(self.dir, "error.log"),
                           "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        if tls:
            wait_until("nginx https up", lambda: subprocess.run(
                ["curl", "-sk", "--http1.1", "-o", "/dev/null", "-w", "%{http_code}", self.url + "/"],
                capture_output=True, text=True, timeout=10).stdout == "200")
        else:
            wait_until("nginx up", lambda: http_status(self.url + "/") == 200)


# ---- TLS (test_tls.py) ----

def make_cert(directory):
    """Self-signed EC certificate for 127.0.0.1; returns (cert, key) paths."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True, timeout=30)
    return cert, key


class NginxTls(Nginx):
    def __init__(self):
        super().__init__(tls=True)
