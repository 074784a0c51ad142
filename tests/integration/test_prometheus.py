"""Integration: the operator assets in deploy/ against a real Prometheus 2.42
(Debian's prometheus package) scraping the real agent, with nginx
(nginx-light) as the observed service.

Checks, in order:
  1. promtool check rules / promtool test rules on deploy/prometheus/;
  2. every metric named by a PromQL expression in the alert rules and the
     Grafana dashboard is on a live scrape of build/sonde (`up` aside: it
     comes from Prometheus);
  3. Prometheus scrapes sonde every second with the rules loaded: the target
     is up, the exact request counts this test made arrive, every rule
     group evaluates with health "ok", every dashboard query is accepted,
     and SondeServiceHighErrorRatio goes pending, with exact labels,
     annotations and value, for a service that answers only 500s."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (Agent, Nginx, ROOT, check, check_eq, finish, free_port,  # noqa: E402
                     http_status, spawn, wait_until)

RULES = os.path.join(ROOT, "deploy", "prometheus", "sonde-alerts.yml")
RULE_TESTS = os.path.join(ROOT, "deploy", "prometheus", "sonde-alerts.test.yml")
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "sonde-overview.json")
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
SERVER_COUNT = "http_server_request_duration_seconds_count"
# Series that Prometheus itself records for each scrape target.
FROM_PROMETHEUS = {"up"}
# The service the alert is triggered on: a copy of the nginx binary under
# a name nobody else on the host runs, so its error ratio is exactly ours.
PROMTEST_SVC = "nginx-promtest"


# ---- PromQL expressions and the metric names in them ----

def rule_exprs(path):
    """(alert name, expr) for each rule of a rules file. The file is plain
    YAML in one style (`expr:` on one line or as a `|` block), read here
    without a YAML library; Prometheus' /api/v1/rules cross-checks the
    count below."""
    out, name = [], None
    lines = open(path).read().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r'^\s*-?\s*(alert|record):\s*(\S+)', line)
        if m:
            name = m.group(2)
        m = re.match(r'^(\s*)expr:\s*(.*)$', line)
        if m:
            indent, value = len(m.group(1)), m.group(2).strip()
            if value in ("|", ">", "|-", ">-"):
                block = []
                i += 1
                while i < len(lines) and (not lines[i].strip() or
                                          len(lines[i]) - len(lines[i].lstrip()) > indent):
                    block.append(lines[i].strip())
                    i += 1
                out.append((name, "\n".join(block).strip()))
                continue
            out.append((name, value))
        i += 1
    return out


def dashboard_exprs(dash):
    """(where, expr) for every panel target and templating query."""
    out = []

    def panels(ps):
        for p in ps:
            yield p
            yield from panels(p.get("panels", []))
    for p in panels(dash.get("panels", [])):
        for t in p.get("targets", []):
            if t.get("expr"):
                out.append((f'panel "{p.get("title")}" {t.get("refId")}', t["expr"]))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if q:
            out.append((f'variable ${v["name"]}', q))
    return out


KEYWORDS = {
    # aggregation operators and binary/set operators
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "and", "or", "unless", "atan2",
    # modifiers
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
    # number literals
    "inf", "nan",
}


def metric_names(expr):
    """Metric names in one PromQL expression (or Grafana variable query).
    A small tokenizer: strings, label matchers, ranges and grouping label
    lists are removed; what remains of identifiers is either a function
    (followed by "("), a keyword, or a metric name."""
    # Grafana's label_values(selector, label): only the selector names metrics.
    m = re.match(r'^\s*label_values\((.*)\)\s*$', expr, re.S)
    if m:
        args = m.group(1)
        expr = args.rsplit(",", 1)[0] if "," in args else ""
    e = re.sub(r'\$\{[^}]*\}|\$\w+', " ", expr)                    # dashboard variables
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', " ", e)  # strings
    e = re.sub(r'\{[^}]*\}', " ", e)                                 # label matchers
    e = re.sub(r'\[[^\]]*\]', " ", e)                                # ranges, subqueries
    e = re.sub(r'\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)', " ", e)
    e = re.sub(r'\boffset\s+-?[0-9a-z]+', " ", e)                    # offset 10m
    names = []
    for tok in re.finditer(r'(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)', e):
        word = tok.group(1)
        rest = e[tok.end():].lstrip()
        if word.lower() in KEYWORDS or rest.startswith("("):
            continue
        names.append(word)
    return names


def exported_names(text):
    """Sample names on a scrape, and the TYPE of each family."""
    samples, types = set(), {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, fam, typ = line.split(None, 3)
            types[fam] = typ
        elif line and not line.startswith("#"):
            samples.add(re.match(r'[a-zA-Z_:][a-zA-Z0-9_:]*', line).group(0))
    return samples, types


def name_status(n, samples, types):
    """How metric name n appears on the scrape: "samples", "declared" (its
    family's TYPE is there but no series yet, as for counters sonde only
    adds once an event happened, e.g. TCP retransmits on a quiet host), or
    None. A _bucket/_count/_sum name must belong to a histogram family."""
    base = re.sub(r'_(bucket|count|sum)$', "", n)
    if base != n and base in types:
        if types[base] not in ("histogram", "summary"):
            return None
        return "samples" if n in samples else "declared"
    if n in samples:
        return "samples"
    return "declared" if n in types else None


def check_names(where, names, samples, types):
    for n in names:
        if n not in FROM_PROMETHEUS:
            check(name_status(n, samples, types), f"{where}: metric {n} is not on sonde's /metrics")


# ---- Prometheus ----

class Prometheus:
    def __init__(self, target, rule_file):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="sonde-prometheus-")
        self.config = os.path.join(self.dir, "prometheus.yml")
        with open(self.config, "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - {rule_file}
scrape_configs:
  - job_name: sonde
    static_configs:
      - targets: ['{target}']
""")
        self.log_path = os.path.join(self.dir, "prometheus.log")
        self.err = open(self.log_path, "w")
        self.proc = spawn([PROMETHEUS, f"--config.file={self.config}",
                           f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
                           f"--web.listen-address=127.0.0.1:{self.port}"],
                          stdout=self.err, stderr=self.err)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_until("prometheus /-/ready", self._ready, timeout=20)

    def _ready(self):
        if self.proc.poll() is not None:
            raise SystemExit(f"FAIL: prometheus exited with {self.proc.returncode}:\n{self.log()}")
        return http_status(self.url + "/-/ready") == 200

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def api(self, path, **params):
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:  # 400/422 carry the error as JSON
            return json.loads(e.read())

    def query(self, q):
        r = self.api("query", query=q)
        if r.get("status") != "success":
            raise SystemExit(f"FAIL: query {q!r}: {r}")
        return r["data"]["result"]

    def alerts(self, name=None, **labels):
        out = []
        for a in self.api("alerts")["data"]["alerts"]:
            if name and a["labels"].get("alertname") != name:
                continue
            if all(a["labels"].get(k) == v for k, v in labels.items()):
                out.append(a)
        return out

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return "hung"


def count_of(prom, **labels):
    sel = ",".join(f'{k}="{v}"' for k, v in labels.items())
    res = prom.query(f"{SERVER_COUNT}{{{sel}}}")
    return [(r["metric"], float(r["value"][1])) for r in res]


class RenamedNginx:
    """nginx run from a copy of its binary called PROMTEST_SVC, with the
    harness' configuration. Readiness is a TCP connect, so every HTTP
    request it serves is one this test counts."""
    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="sonde-nginx-promtest-")
        os.makedirs(os.path.join(self.dir, "www"))
        with open(os.path.join(self.dir, "www", "index.html"), "w") as f:
            f.write("<html><body>promtest</body></html>\n")
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(harness.nginx_conf(self.dir, self.port))
        exe = os.path.join(self.dir, PROMTEST_SVC)
        shutil.copy2(shutil.which("nginx") or "/usr/sbin/nginx", exe)
        self.proc = spawn([exe, "-c", conf, "-p", self.dir, "-e", os.path.join(self.dir, "error.log"),
                           "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.url = f"http://127.0.0.1:{self.port}"

        def listening():
            if self.proc.poll() is not None:
                raise SystemExit(f"FAIL: {PROMTEST_SVC} exited: {self.proc.stderr.read()!r}")
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        wait_until(f"{PROMTEST_SVC} listening", listening)


def get(url, n=1):
    return [http_status(url) for _ in range(n)]


def main():
    if os.geteuid() != 0:
        raise SystemExit("FAIL: the integration tests load BPF programs and must run as root")
    t0 = time.monotonic()

    print("== promtool check rules / test rules", flush=True)
    r = subprocess.run([PROMTOOL, "check", "rules", RULES], capture_output=True, text=True, timeout=60)
    print("   " + (r.stdout + r.stderr).strip().replace("\n", "\n   "), flush=True)
    check_eq(r.returncode, 0, "promtool check rules exit status")
    rules = rule_exprs(RULES)
    check(f"SUCCESS: {len(rules)} rules found" in r.stdout,
          f"promtool counts the {len(rules)} rules this test extracted")
    r = subprocess.run([PROMTOOL, "test", "rules", RULE_TESTS], capture_output=True, text=True, timeout=120)
    print("   " + (r.stdout + r.stderr).strip().replace("\n", "\n   "), flush=True)
    check_eq(r.returncode, 0, "promtool test rules exit status")
    # Every alert of the rules file has a unit test.
    tests_text = open(RULE_TESTS).read()
    for name, _ in rules:
        check(re.search(rf'alertname:\s*{name}\s*$', tests_text, re.M),
              f"{name} has a case in {os.path.basename(RULE_TESTS)}")

    print("== starting sonde, nginx and nginx-promtest", flush=True)
    agent = Agent(print_spans=False)
    nginx = Nginx()
    promtest = RenamedNginx()
    print(f"   sonde :{agent.port}  nginx :{nginx.port}  {PROMTEST_SVC} :{promtest.port}", flush=True)

    # Routes nobody else requests (the harness' readiness probe uses "/"),
    # on a port only this nginx has.
    print("== traffic through nginx", flush=True)
    check_eq(get(nginx.url + "/sonde-prom-404", 7), [404] * 7, "nginx /sonde-prom-404 statuses")
    check_eq(get(nginx.url + "/error", 3), [500] * 3, "nginx /error statuses")
    check_eq(get(nginx.url + "/users/1234"), [200], "nginx /users/1234 status")
    ng = {"service_name": "nginx", "server_port": str(nginx.port)}

    def agent_has_all():
        m = agent.metrics()
        return (harness.series(m, SERVER_COUNT, http_request_method="GET", http_response_status_code="404",
                               http_route="/sonde-prom-404", error_type="", **ng) == 7 and
                harness.series(m, SERVER_COUNT, http_request_method="GET", http_response_status_code="500",
                               http_route="/error", error_type="500", **ng) == 3)
    # One refused connect: a sonde_tcp_connect_failures_total series where
    # the TCP-state hooks attach (not asserted: they are optional).
    with socket.socket() as s:
        try:
            s.connect(("127.0.0.1", free_port()))
        except ConnectionRefusedError:
            pass
    wait_until("the test's requests on sonde's /metrics", agent_has_all, timeout=10)
    text = agent.metrics_text()
    samples, types = exported_names(text)

    print("== metric names in the rules and the dashboard vs. the live scrape", flush=True)
    dash = json.load(open(DASHBOARD))
    exprs = [(f"rule {n}", e) for n, e in rules] + dashboard_exprs(dash)
    checked = {}
    for where, e in exprs:
        names = metric_names(e)
        check(names, f"{where}: no metric name found in {e!r}")
        check_names(where, names, samples, types)
        for n in names:
            checked.setdefault(n, set()).add(where.split(" ")[0])
    print(f"   {len(exprs)} expressions ({len(rules)} rules, {len(exprs) - len(rules)} dashboard), "
          f"{len(checked)} metric names:", flush=True)
    for n in sorted(checked):
        status = ("from Prometheus" if n in FROM_PROMETHEUS else
                  {"samples": "exported", "declared": "declared, no series yet"}.get(
                      name_status(n, samples, types), "MISSING"))
        print(f"     {n:55s} {status:24s} ({', '.join(sorted(checked[n]))})", flush=True)
    check(dash.get("schemaVersion", 0) >= 36, "dashboard schemaVersion")
    tvars = {v["name"]: v for v in dash["templating"]["list"]}
    check_eq(tvars.get("DS_PROMETHEUS", {}).get("type"), "datasource", "DS_PROMETHEUS is a datasource variable")
    sq = tvars.get("service_name", {}).get("query")
    check_eq(sq.get("query") if isinstance(sq, dict) else sq,
             'label_values(http_server_request_duration_seconds_count{k8s_namespace_name=~"$k8s_namespace_name"}, '
             'service_name)', "service_name variable (services of the chosen namespaces)")
    nq = tvars.get("k8s_namespace_name", {}).get("query")
    check_eq(nq.get("query") if isinstance(nq, dict) else nq,
             "label_values(http_server_request_duration_seconds_count, k8s_namespace_name)",
             "k8s_namespace_name variable")
    bad_ds = [p.get("title") for p in dash["panels"] if p.get("type") != "row" and
              p.get("datasource", {}).get("uid") != "${DS_PROMETHEUS}"]
    check_eq(bad_ds, [], "panels not on ${DS_PROMETHEUS}")

    print("== prometheus scraping sonde", flush=True)
    prom = Prometheus(f"127.0.0.1:{agent.port}", RULES)
    print(f"   prometheus :{prom.port}  data {prom.dir}", flush=True)
    up = wait_until('up{job="sonde"} == 1',
                    lambda: [float(r["value"][1]) for r in prom.query('up{job="sonde"}')] == [1.0], timeout=15)
    check(up, 'up{job="sonde"} is 1')
    # The exact counts this test made, as Prometheus stored them.
    res = wait_until("nginx counts in prometheus",
                     lambda: count_of(prom, http_route="/sonde-prom-404", **ng), timeout=10)
    check_eq(res, [({"__name__": SERVER_COUNT, "job": "sonde", "instance": f"127.0.0.1:{agent.port}",
                     "http_request_method": "GET", "http_response_status_code": "404",
                     "http_route": "/sonde-prom-404", **ng}, 7.0)],
             "prometheus: nginx /sonde-prom-404 series")
    check_eq([v for _, v in count_of(prom, http_route="/error", http_response_status_code="500", **ng)], [3.0],
             "prometheus: nginx /error 500 count")
    check_eq([v for _, v in count_of(prom, http_route="/users/{id}", **ng)], [1.0],
             "prometheus: nginx /users/{id} count (route normalised)")

    # Every rule loaded and evaluated without error against real data.
    def evaluated():
        groups = prom.api("rules")["data"]["groups"]
        rs = [r for g in groups for r in g["rules"]]
        # not yet evaluated: health "unknown", lastEvaluation the zero time
        done = rs and all(r["health"] != "unknown" and not r.get("lastEvaluation", "0001").startswith("0001")
                          for r in rs)
        return groups if done else None
    groups = wait_until("every rule evaluated once", evaluated, timeout=10)
    file_groups = re.findall(r'^\s*-\s*name:\s*(\S+)', open(RULES).read(), re.M)
    check_eq(sorted(g["name"] for g in groups), sorted(file_groups), "rule groups loaded")
    loaded = [(r["name"], r["health"], r.get("lastError", "")) for g in groups for r in g["rules"]]
    check_eq(sorted(n for n, _, _ in loaded), sorted(n for n, _ in rules), "rules loaded")
    check_eq([(n, h, e) for n, h, e in loaded if h != "ok"], [], "rules with health other than ok")
    print(f"   {len(groups)} groups, {len(loaded)} rules, health: "
          f"{sorted(set(h for _, h, _ in loaded))}", flush=True)

    # Every dashboard query parses and evaluates, variables set to "all".
    def grafana_to_promql(e):
        e = e.replace("$__rate_interval", "1m").replace("$__range", "1m")
        return re.sub(r'\$\{?(service_name|instance|k8s_namespace_name)\}?', ".*", e)
    errors = []
    for where, e in dashboard_exprs(dash):
        if e.startswith("label_values("):
            continue
        r = prom.api("query", query=grafana_to_promql(e))
        if r.get("status") != "success":
            errors.append((where, r.get("error")))
    check_eq(errors, [], "dashboard queries Prometheus rejects")
    # A RED panel returns nginx's series (variables as "nginx", port of this nginx).
    rate_panel = next(e for w, e in dashboard_exprs(dash) if w.startswith('panel "Request rate"'))
    nginx_rate = grafana_to_promql(rate_panel).replace('service_name=~".*"', 'service_name="nginx"')
    res = wait_until("two samples of nginx's series", lambda: prom.query(nginx_rate), timeout=5, fatal=False)
    check_eq([r["metric"] for r in res], [{"service_name": "nginx"}], 'dashboard "Request rate" for nginx')

    # Alert: a service that answers only 500s. Phase 1 makes its series
    # exist in Prometheus (a new series' first value is no increase);
    # phase 2's 40 errors are then a rate of at least 40 / 300 s, above
    # the rule's 0.1 req/s guard, and the 5xx ratio is exactly 1: the one
    # 200 series stays flat.
    print(f"== triggering SondeServiceHighErrorRatio on {PROMTEST_SVC}", flush=True)
    check_eq(get(promtest.url + "/") + get(promtest.url + "/error"), [200, 500], f"{PROMTEST_SVC} phase 1")
    pt = {"service_name": PROMTEST_SVC}
    wait_until(f"{PROMTEST_SVC} series in prometheus",
               lambda: sorted(v for _, v in count_of(prom, **pt)) == [1.0, 1.0], timeout=10)
    check_eq(prom.alerts("SondeServiceHighErrorRatio", **pt), [], "no alert before the errors")
    check_eq(get(promtest.url + "/error", 40), [500] * 40, f"{PROMTEST_SVC} phase 2")
    alert = wait_until("SondeServiceHighErrorRatio pending",
                       lambda: prom.alerts("SondeServiceHighErrorRatio", **pt), timeout=15)
    a = alert[0]
    check_eq(len(alert), 1, "one SondeServiceHighErrorRatio alert for the service")
    check_eq(a["state"], "pending", "alert state (for: 5m not elapsed)")
    check_eq(a["labels"], {"alertname": "SondeServiceHighErrorRatio", "service_name": PROMTEST_SVC,
                           "severity": "critical"}, "alert labels")
    check_eq(a["annotations"], {
        "summary": f"{PROMTEST_SVC} answers more than 5% of requests with 5xx",
        "description": f"100% of the HTTP requests served by {PROMTEST_SVC} over the last 5 minutes "
                       "had a 5xx status."}, "alert annotations")
    check_eq(float(a["value"]), 1.0, "alert value (5xx ratio)")
    counts = sorted((m["http_route"], m["http_response_status_code"], v) for m, v in count_of(prom, **pt))
    check_eq(counts, [("/", "200", 1.0), ("/error", "500", 41.0)], f"prometheus: {PROMTEST_SVC} counts")
    check_eq([x["labels"]["alertname"] for x in prom.alerts(**pt)
              if x["labels"]["alertname"] != "SondeServiceHighErrorRatio"], [],
             f"other alerts on {PROMTEST_SVC}")
    check_eq(prom.alerts("SondeAgentDown") + prom.alerts("SondeAgentAbsent"), [],
             "agent alerts while sonde is up")
    # SondeProbeUnavailable as computed from the scrape: one pending alert
    # per hook sonde reports unattached (none where every hook attached).
    inst = f"127.0.0.1:{agent.port}"
    unattached = sorted((dict(k[1])["hook"], dict(k[1])["mode"]) for k, v in harness.parse_metrics(text).items()
                        if k[0] == "sonde_probe_info" and (v == 0 or dict(k[1])["mode"] == "unavailable"))
    got = sorted((x["labels"]["hook"], x["labels"]["mode"], x["state"])
                 for x in prom.alerts("SondeProbeUnavailable", instance=inst))
    check_eq(got, [(h, m, "pending") for h, m in unattached], "SondeProbeUnavailable alerts (for: 5m)")
    print(f"   SondeProbeUnavailable pending for {len(got)} hooks: {', '.join(h for h, _, _ in got) or '-'}",
          flush=True)
    # SondeCaptureTaxesAllSyscalls: pending exactly when capture runs on syscall tracepoints.
    tier = [dict(k[1])["mode"] for k, v in harness.parse_metrics(text).items()
            if k[0] == "sonde_probe_info" and dict(k[1])["hook"] == "payload_capture" and v == 1]
    check_eq(len(tier), 1, f"one capture tier reported: {tier}")
    got = [x["state"] for x in prom.alerts("SondeCaptureTaxesAllSyscalls", instance=inst)]
    check_eq(got, ["pending"] if tier == ["syscall"] else [],
             f"SondeCaptureTaxesAllSyscalls for capture tier {tier}")

    print("== stopping prometheus and sonde", flush=True)
    check_eq(prom.stop(), 0, "prometheus exit status after SIGTERM")
    check_eq(agent.stop(), 0, "sonde exit status after SIGINT")
    shutil.rmtree(prom.dir, ignore_errors=True)  # the TSDB
    print(f"   {time.monotonic() - t0:.1f}s", flush=True)
    finish("test_prometheus")


if __name__ == "__main__":
    main()
