"""Integration: sonde's textfile collector against the real Prometheus
node_exporter (Debian's prometheus-node-exporter 1.5) reading the same
--collector.textfile.directory.

No agent is needed: build/sonde-hostdump renders sonde's node_* page (the
same user/host code the agent runs). For each case the directory gets the
case's files (fixed mtimes), then both exporters are scraped and their
textfile output compared exactly: family names, TYPE, HELP, every series'
labels and value, node_textfile_mtime_seconds and node_textfile_scrape_error.
Each case also states the scrape_error and series count it must give, so a
case both exporters get wrong the same way still fails. Two cases are
sonde's own rules (a file over 1 MiB; a family that would shadow one of
sonde's node_* families) and are checked against sonde's documented result."""
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ROOT, check, check_eq, finish, free_port, http_get, spawn, wait_until  # noqa: E402

HOSTDUMP = os.path.join(ROOT, "build", "sonde-hostdump")
MTIME = 1700000000

GOOD = '''# HELP backup_last_success_seconds Unix time of the last good backup.
# TYPE backup_last_success_seconds gauge
backup_last_success_seconds{job="db"} 1.7e9
backup_last_success_seconds{job="web",host="x"} 17
# TYPE jobs_total counter
jobs_total{kind="a"} 3
jobs_total{kind="b"} 4
plain 4.5
'''

# (name, {file: bytes}, expected scrape_error, expected number of series
#  outside node_textfile_*)
CASES = [
    ("good file", {"a.prom": GOOD}, 0, 5),
    ("no HELP gets 'Metric read from'", {"a.prom": "x 1\ny{a=\"1\"} 2\n"}, 0, 2),
    ("label names padded with \"\" within a family",
     {"a.prom": 'm{a="1"} 1\nm{b="2"} 2\nm 3\n'}, 0, 3),
    ("histogram: unsorted buckets, le written as Go writes it, +Inf kept or made from the count",
     {"a.prom": '# TYPE h histogram\nh_bucket{le="1.0"} 3\nh_bucket{le="0.25"} 1\n'
                'h_bucket{le="1e6"} 4\nh_bucket{le="+Inf"} 9\nh_sum 2.5\nh_count 5\n'
                'h_bucket{x="y",le="10"} 1\nh_count{x="y"} 1\n'}, 0, 10),
    ("summary", {"a.prom": '# HELP s A summary.\n# TYPE s summary\ns{quantile="0.5"} 1\n'
                           's{quantile="0.99"} 2\ns_sum 10\ns_count 7\n'}, 0, 4),
    ("samples before their TYPE line: untyped families",
     {"a.prom": 'hs_bucket{le="1"} 1\nhs_sum 2\nhs_count 1\n# TYPE hs histogram\n'}, 0, 3),
    ("syntax error skips the file", {"a.prom": GOOD, "b.prom": "bad line here\n"}, 1, 5),
    ("timestamps skip the whole file", {"a.prom": "ok 1\nts 1 1700000000000\n"}, 1, 0),
    ("last line without newline", {"a.prom": "x 1"}, 1, 0),
    ("trailing blank after the value", {"a.prom": "x 1 \n"}, 1, 0),
    ("spurious text after timestamp", {"a.prom": "x 1 2 3\n"}, 1, 0),
    ("duplicate series: the first wins", {"a.prom": "# TYPE d gauge\nd 1\nd 2\n"}, 0, 1),
    ("one family in several files", {"a.prom": '# TYPE s gauge\ns{a="1"} 1\n',
                                     "b.prom": '# TYPE s gauge\ns{a="2"} 2\n',
                                     "c.prom": '# TYPE s gauge\ns{a="1"} 3\n'}, 0, 2),
    ("HELP differs between files: later file's series dropped",
     {"a.prom": "# TYPE j counter\nj 3\n", "b.prom": '# HELP j other\n# TYPE j counter\nj{x="1"} 5\n'},
     0, 1),
    ("TYPE differs between files", {"a.prom": "# TYPE t gauge\nt 1\n",
                                    "b.prom": '# TYPE t counter\nt{x="1"} 5\n'}, 0, 1),
    ("TYPE after samples", {"a.prom": "x 1\n# TYPE x gauge\n"}, 1, 0),
    ("second HELP", {"a.prom": "# HELP x a\n# HELP x b\nx 1\n"}, 1, 0),
    ("unknown TYPE", {"a.prom": "# TYPE x gaugeish\nx 1\n"}, 1, 0),
    ("TYPE in capitals", {"a.prom": "# TYPE x GAUGE\nx 1\n"}, 0, 1),
    ("label escapes", {"a.prom": 'z{a="\\\\q\\"\\n"} -1e-7\n'}, 0, 1),
    ("bad label escape", {"a.prom": 'z{a="\\t"} 1\n'}, 1, 0),
    ("label value not UTF-8", {"a.prom": b'z{a="\xff"} 1\n'}, 1, 0),
    ("duplicate label name", {"a.prom": 'z{a="1",a="2"} 1\n'}, 1, 0),
    ("__name__ label", {"a.prom": 'z{__name__="q"} 1\n'}, 1, 0),
    ("trailing comma and blanks in braces", {"a.prom": 'z { a = "1" , } 1\n'}, 0, 1),
    ("special values", {"a.prom": "a NaN\nb +Inf\nc -Inf\nd inf\ne -0\nf 1e-400\n"}, 0, 6),
    ("hex float", {"a.prom": "x 0x1p3\n"}, 1, 0),
    ("underscore in float", {"a.prom": "x 1_000\n"}, 1, 0),
    ("signed NaN", {"a.prom": "x -NaN\n"}, 1, 0),
    ("float overflow", {"a.prom": "x 1e400\n"}, 1, 0),
    ("bad quantile", {"a.prom": '# TYPE s summary\ns{quantile="x"} 1\n'}, 1, 0),
    ("CRLF line ends", {"a.prom": "x 1\r\n"}, 1, 0),
    ("comments, blank lines, leading blanks",
     {"a.prom": "\n# just a comment\n#\n   \n  x 1\n# HELP\n# TYPE y\n"}, 0, 1),
    ("empty file and other names", {"a.prom": "", "b.txt": "x 1\n", "c.prom.tmp": "y 1\n"}, 0, 0),
    ("a directory named x.prom", {"sub.prom/": None, "a.prom": "x 1\n"}, 0, 1),
    ("metric name starting with a digit", {"a.prom": "1x 1\n"}, 1, 0),
    ("HELP escapes: \\\\ and \\n only", {"a.prom": "# HELP q a\\\\b\\nc\nq 1\n"}, 0, 1),
    ("HELP with an escaped quote (1.5 rejects it)", {"a.prom": '# HELP q say \\"hi\\"\nq 1\n'}, 1, 0),
    ("tabs as blanks", {"a.prom": 'q{a="x"\t}\t1\n'}, 0, 1),
    ("empty braces", {"a.prom": "q { } 1\n"}, 0, 1),
]

# sonde's own rules, not node_exporter's (its README says why)
SONDE_ONLY = [
    ("file over 1 MiB is skipped", {"a.prom": "x 1\n" + "# pad\n" * 200000, "b.prom": "y 1\n"},
     1, ["y"]),
    ("a family sonde's page already has is left out",
     {"a.prom": "node_load1 42\n", "b.prom": "y 1\n"}, 1, ["y"]),
]

_sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')


def unescape_labels(s):
    out, i = [], 0
    while i < len(s):
        m = re.match(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="', s[i:])
        if not m:
            break
        i += m.end()
        v = []
        while s[i] != '"':
            if s[i] == "\\":
                v.append({"n": "\n", "\\": "\\", '"': '"'}[s[i + 1]])
                i += 2
            else:
                v.append(s[i])
                i += 1
        out.append((m.group(1), "".join(v)))
        i += 1
        if i < len(s) and s[i] == ",":
            i += 1
    return tuple(sorted(out))


def page(text):
    """{family: [type, help, {(sample name, labels): value}]}"""
    fams, cur = {}, None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_ = line[7:].partition(" ")
            cur = fams.setdefault(name, [None, None, {}])
            cur[1] = help_
        elif line.startswith("# TYPE "):
            name, _, typ = line[7:].partition(" ")
            cur = fams.setdefault(name, [None, None, {}])
            cur[0] = typ
        elif line and not line.startswith("#"):
            m = _sample.match(line)
            if not m:
                raise SystemExit(f"FAIL: unparsable line {line!r}")
            v = float(m.group(3))
            cur[2][(m.group(1), unescape_labels(m.group(2) or ""))] = "NaN" if math.isnan(v) else v
    return fams


def textfile_part(fams, builtin):
    return {n: f for n, f in fams.items() if n not in builtin and not n.startswith(("sonde_", "go_", "process_", "promhttp_", "node_scrape_", "node_exporter_"))}


def write_case(d, files):
    for n in os.listdir(d):
        p = os.path.join(d, n)
        shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)
    for name, body in files.items():
        p = os.path.join(d, name.rstrip("/"))
        if body is None:
            os.mkdir(p)
        else:
            with open(p, "wb") as f:
                f.write(body.encode() if isinstance(body, str) else body)
        os.utime(p, (MTIME, MTIME))


def sonde_page(d):
    r = subprocess.run([HOSTDUMP, f"--collector.textfile.directory={d}"], capture_output=True,
                       text=True, timeout=30)
    if r.returncode != 0:
        raise SystemExit(f"FAIL: sonde-hostdump exited {r.returncode}: {r.stderr}")
    return r.stdout


def main():
    ne_bin = shutil.which("prometheus-node-exporter")
    if not ne_bin:
        raise SystemExit("FAIL: prometheus-node-exporter not installed (scripts/install-deps.sh)")
    if not os.access(HOSTDUMP, os.X_OK):
        raise SystemExit("FAIL: build/sonde-hostdump missing (make all)")
    work = tempfile.mkdtemp(prefix="sonde-textfile-")
    d = os.path.join(work, "textfile")
    os.mkdir(d)
    port = free_port()
    log = open(os.path.join(work, "node_exporter.log"), "w")
    ne = spawn([ne_bin, f"--web.listen-address=127.0.0.1:{port}", "--collector.disable-defaults",
                "--collector.textfile", f"--collector.textfile.directory={d}"],
               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/metrics"

    def up():
        if ne.poll() is not None:
            raise SystemExit(f"FAIL: node_exporter exited {ne.returncode} (log {log.name})")
        return http_get(url)[0] == 200
    wait_until("node_exporter /metrics", up)
    # sonde's own families (every other host collector) are not textfile output
    r = subprocess.run([HOSTDUMP], capture_output=True, text=True, timeout=30)
    builtin = set(page(r.stdout)) - {"node_textfile_scrape_error"}

    print("== textfile cases, sonde vs node_exporter", flush=True)
    for name, files, want_err, want_series in CASES:
        write_case(d, files)
        mine = textfile_part(page(sonde_page(d)), builtin)
        theirs = textfile_part(page(http_get(url)[1].decode()), builtin)
        check_eq(mine, theirs, f"{name}: textfile families (sonde vs node_exporter)")
        err = mine.get("node_textfile_scrape_error", [None, None, {}])[2].get(("node_textfile_scrape_error", ()))
        check_eq(err, float(want_err), f"{name}: node_textfile_scrape_error")
        n = sum(len(f[2]) for k, f in mine.items() if not k.startswith("node_textfile_"))
        check_eq(n, want_series, f"{name}: series from the files")
        if want_err == 0 and files:
            proms = sorted(os.path.join(d, k.rstrip("/")) for k in files if k.rstrip("/").endswith(".prom"))
            mt = {dict(lab)["file"]: v for (_, lab), v in
                  mine.get("node_textfile_mtime_seconds", [None, None, {}])[2].items()}
            check_eq(mt, {p: float(MTIME) for p in proms}, f"{name}: node_textfile_mtime_seconds")

    print("== sonde's own rules", flush=True)
    for name, files, want_err, want_fams in SONDE_ONLY:
        write_case(d, files)
        mine = textfile_part(page(sonde_page(d)), builtin)
        err = mine["node_textfile_scrape_error"][2][("node_textfile_scrape_error", ())]
        check_eq(err, float(want_err), f"{name}: node_textfile_scrape_error")
        check_eq(sorted(k for k in mine if not k.startswith("node_textfile_")), want_fams,
                 f"{name}: families from the files")
    write_case(d, {"a.prom": "node_load1 42\n"})
    full = page(sonde_page(d))
    check_eq(len(full["node_load1"][2]), 1, "node_load1 keeps exactly sonde's own series")
    check(full["node_load1"][2].get(("node_load1", ())) != 42.0, "node_load1 is not the file's 42")

    print("== missing directory, then no directory configured", flush=True)
    shutil.rmtree(d)
    mine = page(sonde_page(d))
    theirs = page(http_get(url)[1].decode())
    check_eq(mine["node_textfile_scrape_error"], theirs["node_textfile_scrape_error"],
             "missing directory: node_textfile_scrape_error family (sonde vs node_exporter)")
    check_eq(mine["node_textfile_scrape_error"][2][("node_textfile_scrape_error", ())], 1.0,
             "missing directory: node_textfile_scrape_error")
    r = subprocess.run([HOSTDUMP], capture_output=True, text=True, timeout=30)
    none = page(r.stdout)
    check_eq(none["node_textfile_scrape_error"][2], {("node_textfile_scrape_error", ()): 0.0},
             "no directory configured: node_textfile_scrape_error 0 (upstream 1.5's default)")
    check("node_textfile_mtime_seconds" not in none, "no directory configured: no mtime family")
    r = subprocess.run(["promtool", "check", "metrics"], input=sonde_page(d), capture_output=True,
                       text=True, timeout=30)
    check(r.returncode in (0, 3), f"promtool parses the page (exit {r.returncode}: {r.stderr[-300:]})")
    shutil.rmtree(work, ignore_errors=True)
    finish("test_textfile")


if __name__ == "__main__":
    main()
