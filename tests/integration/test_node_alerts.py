"""Integration: the node-mixin alert set (deploy/prometheus/node-alerts.yml)
against sonde's real page and a real Prometheus 2.42 (Debian's prometheus)
scraping the agent.

  1. promtool check rules / promtool test rules; every alert has a case;
  2. every metric a rule names is on the live scrape of build/sonde when
     its collector works on this host; for collectors whose hardware this
     host lacks (md RAID, bonding: sonde_host_collector_success 0), the
     name must be on sonde's page rendered from the fixture trees of
     tests/fixtures/host/ instead, and the test says so;
  3. Prometheus scrapes sonde every second with the rules loaded: every
     rule evaluates with health "ok", and every series selector of every
     rule returns data, except those of the absent collectors ("no data"
     for a collector this host has fails);
  4. NodeTextFileCollectorScrapeError fires with exact labels when a bad
     file lands in the textfile directory, and resolves when it is fixed;
  5. NodeClockNotSynchronising is pending exactly when this host's own
     adjtimex values (as sonde exports them) meet its condition."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Agent, ROOT, check, check_eq, finish, parse_metrics, wait_until  # noqa: E402
from test_prometheus import PROMTOOL, Prometheus, metric_names, rule_exprs  # noqa: E402

RULES = os.path.join(ROOT, "deploy", "prometheus", "node-alerts.yml")
RULE_TESTS = os.path.join(ROOT, "deploy", "prometheus", "node-alerts.test.yml")
HOSTDUMP = os.path.join(ROOT, "build", "sonde-hostdump")
FIX = os.path.join(ROOT, "tests", "fixtures", "host")
# metric name prefix -> sonde collector (for the success check)
COLLECTOR = [("node_filesystem_", "filesystem"), ("node_network_up", "netclass"),
             ("node_network_", "netdev"), ("node_nf_conntrack_", "conntrack"),
             ("node_bonding_", "bonding"), ("node_textfile_", "textfile"), ("node_timex_", "timex"),
             ("node_md_", "mdadm"), ("node_filefd_", "filefd")]
# fixture tree that has each collector's hardware
FIXTURE_OF = {"mdadm": "md", "bonding": "net"}


def collector_of(name):
    return next((c for p, c in COLLECTOR if name.startswith(p)), None)


def selectors(expr):
    return re.findall(r'([a-zA-Z_:][a-zA-Z0-9_:]*\{[^}]*\})', expr)


def main():
    if os.geteuid() != 0:
        raise SystemExit("FAIL: the integration tests load BPF programs and must run as root")
    print("== promtool check rules / test rules", flush=True)
    r = subprocess.run([PROMTOOL, "check", "rules", RULES], capture_output=True, text=True, timeout=60)
    print("   " + (r.stdout + r.stderr).strip().replace("\n", "\n   "), flush=True)
    check_eq(r.returncode, 0, "promtool check rules exit status")
    rules = rule_exprs(RULES)
    check_eq(len(rules), 20, "rules in node-alerts.yml")
    check("SUCCESS: 20 rules found" in r.stdout, "promtool counts 20 rules")
    r = subprocess.run([PROMTOOL, "test", "rules", RULE_TESTS], capture_output=True, text=True, timeout=120)
    print("   " + (r.stdout + r.stderr).strip().replace("\n", "\n   "), flush=True)
    check_eq(r.returncode, 0, "promtool test rules exit status")
    tests_text = open(RULE_TESTS).read()
    for name in sorted({n for n, _ in rules}):
        check(re.search(rf'alertname:\s*{name}\s*$', tests_text, re.M),
              f"{name} has a case in {os.path.basename(RULE_TESTS)}")

    print("== metric names in the rules vs. sonde's page", flush=True)
    tf_dir = tempfile.mkdtemp(prefix="sonde-node-alerts-tf-")
    good = os.path.join(tf_dir, "cron.prom")
    with open(good, "w") as f:
        f.write("# HELP backup_ok Whether the last backup worked.\n# TYPE backup_ok gauge\nbackup_ok 1\n")
    agent = Agent(f"--collector.textfile.directory={tf_dir}", print_spans=False)
    inst = f"127.0.0.1:{agent.port}"
    text = agent.metrics_text()
    m = parse_metrics(text)
    ok = {dict(k[1])["collector"]: v for k, v in m.items() if k[0] == "sonde_host_collector_success"}
    present = {k[0] for k in m}
    fixture_pages = {}
    absent = set()
    for where, e in rules:
        for n in metric_names(e):
            c = collector_of(n)
            check(c, f"rule {where}: metric {n} maps to a sonde collector")
            if ok.get(c) == 1.0:
                check(n in present, f"rule {where}: {n} on sonde's page ({c} works here)")
                continue
            absent.add(c)
            fx = FIXTURE_OF.get(c)
            check(fx, f"rule {where}: {n}: collector {c} reports success {ok.get(c)} here and has no fixture")
            if not fx:
                continue
            if fx not in fixture_pages:
                r = subprocess.run([HOSTDUMP, f"--path.procfs={FIX}/{fx}/proc", f"--path.sysfs={FIX}/{fx}/sys"],
                                   capture_output=True, text=True, timeout=30)
                fixture_pages[fx] = {k[0] for k in parse_metrics(r.stdout)}
            check(n in fixture_pages[fx], f"rule {where}: {n} on sonde's page for fixture {fx}")
    for c in sorted(absent):
        print(f"   note: {c}: no such hardware on this host (sonde_host_collector_success 0); "
              f"its metric names were checked on fixture '{FIXTURE_OF.get(c)}' instead", flush=True)

    print("== prometheus scraping sonde with node-alerts.yml", flush=True)
    prom = Prometheus(inst, RULES)
    wait_until('up{job="sonde"} == 1',
               lambda: [float(x["value"][1]) for x in prom.query('up{job="sonde"}')] == [1.0], timeout=15)
    # deriv/min_over_time/rate need a few samples
    time.sleep(4)

    def evaluated():
        groups = prom.api("rules")["data"]["groups"]
        rs = [x for g in groups for x in g["rules"]]
        done = len(rs) == 20 and all(x["health"] != "unknown" and
                                     not x.get("lastEvaluation", "0001").startswith("0001") for x in rs)
        return rs if done else None
    rs = wait_until("every rule evaluated", evaluated, timeout=15)
    check_eq([(x["name"], x["health"], x.get("lastError", "")) for x in rs if x["health"] != "ok"], [],
             "rules with health other than ok")
    nodata = []
    nsel = 0
    for where, e in rules:
        for sel in selectors(e):
            name = sel.split("{")[0]
            if collector_of(name) in absent:
                continue
            nsel += 1
            if not prom.query(f"count({sel})"):
                nodata.append((where, sel))
    check_eq(nodata, [], "rule selectors with no data in Prometheus (collectors this host has)")
    print(f"   {len(rs)} rules ok; {nsel} selectors return data; left out (absent here): "
          f"{', '.join(sorted(absent)) or '-'}", flush=True)

    print("== NodeClockNotSynchronising against this host's clock", flush=True)
    sync = m.get(("node_timex_sync_status", frozenset()))
    maxerr = m.get(("node_timex_maxerror_seconds", frozenset()))
    want = [("pending", {"alertname": "NodeClockNotSynchronising", "severity": "warning", "job": "sonde",
                         "instance": inst})] if sync == 0 and maxerr >= 16 else []
    print(f"   node_timex_sync_status {sync}, node_timex_maxerror_seconds {maxerr}: "
          f"{'expect pending' if want else 'expect none'}", flush=True)
    got = wait_until("NodeClockNotSynchronising state", lambda: [
        (a["state"], a["labels"]) for a in prom.alerts("NodeClockNotSynchronising")] or None,
        timeout=10, fatal=False) or []
    check_eq(got, want, "NodeClockNotSynchronising (for: 10m)")

    print("== NodeTextFileCollectorScrapeError: a bad file, then fixed", flush=True)
    check_eq(prom.alerts("NodeTextFileCollectorScrapeError"), [], "no textfile alert with a good file")
    bad = os.path.join(tf_dir, "broken.prom")
    with open(bad, "w") as f:
        f.write("this is not a metric\n")
    a = wait_until("NodeTextFileCollectorScrapeError firing",
                   lambda: [x for x in prom.alerts("NodeTextFileCollectorScrapeError") if x["state"] == "firing"],
                   timeout=15)
    check_eq([(x["labels"], float(x["value"])) for x in a],
             [({"alertname": "NodeTextFileCollectorScrapeError", "severity": "warning", "job": "sonde",
                "instance": inst}, 1.0)], "NodeTextFileCollectorScrapeError labels and value")
    check_eq(parse_metrics(agent.metrics_text()).get(("backup_ok", frozenset())), 1.0,
             "the good file's metric stays on the page beside the bad file")
    os.unlink(bad)
    gone = wait_until("NodeTextFileCollectorScrapeError resolved",
                      lambda: prom.alerts("NodeTextFileCollectorScrapeError") == [], timeout=15)
    check(gone, "NodeTextFileCollectorScrapeError resolved after the file is removed")

    check_eq(prom.stop(), 0, "prometheus exit status after SIGTERM")
    check_eq(agent.stop(), 0, "sonde exit status")
    shutil.rmtree(prom.dir, ignore_errors=True)
    shutil.rmtree(tf_dir, ignore_errors=True)
    finish("test_node_alerts")


if __name__ == "__main__":
    main()
