"""Integration: sonde's real BPF programs against real database servers on
127.0.0.1 (PostgreSQL 15, MariaDB, Redis), each on a free (non-standard)
port, driven by their own clients (psql, pgbench, mariadb, redis-cli,
redis-benchmark) and by PyMySQL, a client that does not use libmysqlclient.
Asserts exact per-operation counts on /metrics (client and server side),
--print spans fields, SQLSTATE / error codes and literal-free queries, and
operations the connection fails under (a server that kills the client's
connection, a client killed while it waits) as failed client spans."""
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Agent, check, check_eq, finish, free_port, http_status, series,  # noqa: E402
                     spawn, wait_until)

CLIENT_H = "db_client_operation_duration_seconds"
SERVER_H = "db_server_operation_duration_seconds"
PG_BIN = "/usr/lib/postgresql/15/bin"
SYSTEM_PY = "/usr/bin/python3"	# Debian's python3-pymysql lives there


def run(args, **kw):
    kw.setdefault("timeout", 60)
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    return r


def counts(metrics, hist):
    """{(system, operation, collection, error_type, service): count}"""
    out = {}
    for (name, labels), v in metrics.items():
        if name == hist + "_count":
            d = dict(labels)
            out[(d["db_system_name"], d["db_operation_name"], d["db_collection_name"],
                 d["error_type"], d["service_name"])] = int(v)
    return out


def settle(agent, want_fn, timeout=10):
    """Scrapes until want_fn(metrics) holds (records reach /metrics within a
    drain); returns the last scrape either way so exact checks show why."""
    last = [None]

    def ok():
        last[0] = agent.metrics()
        return want_fn(last[0])
    wait_until("expected database counts", ok, timeout=timeout, fatal=False)
    return last[0]


def db_spans_all(agent):
    check_eq(agent.stop(), 0, "agent exit status after SIGINT")
    return agent.spans()


def db_spans_read(agent, system):
    return [s for s in agent.spans() if s.get("db_system") == system]


def db_spans(agent, system):
    """Spans of system, read after the agent stopped: while it runs, a
    full stdout buffer may end the file in the middle of a line."""
    check_eq(agent.stop(), 0, "agent exit status after SIGINT")
    return [s for s in agent.spans() if s.get("db_system") == system]


def polled(what, fn, timeout=15):
    """Calls fn (a client call) until it returns a true value; returns that
    value and how many calls it took, so exact counts can include them."""
    deadline = time.monotonic() + timeout
    n = 0
    while True:
        n += 1
        v = fn()
        if v:
            return v, n
        if time.monotonic() > deadline:
            raise SystemExit(f"FAIL: timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def failed_view(spans, op):
    """(error_type, db_status, db_query, incomplete) of the client spans of op."""
    return sorted((s.get("error_type", ""), s["db_status"], s["db_query"], bool(s.get("incomplete")))
                  for s in spans if s["kind"] == "client" and s["db_operation"] == op)


def check_waited(spans, op, error_type, low_ms, high_ms, what):
    """The failed span of op lasted from the request to the failure (not to
    when the server would have answered)."""
    d = [s["duration_ms"] for s in spans if s["kind"] == "client" and s["db_operation"] == op and
         s.get("error_type") == error_type]
    print(f"   {what}: {d} ms", flush=True)
    check(len(d) == 1 and low_ms <= d[0] < high_ms, f"{what}: duration {d} ms in [{low_ms}, {high_ms})")


# ---- PostgreSQL ----

class Postgres:
    def __init__(self):
        pw = pwd.getpwnam("postgres")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="sonde-pg-")
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.data = os.path.join(self.dir, "data")
        r = run(["runuser", "-u", "postgres", "--", f"{PG_BIN}/initdb", "-D", self.data, "-A", "trust",
                 "-U", "postgres", "--no-sync", "-E", "UTF8"])
        if r.returncode:
            raise SystemExit(f"FAIL: initdb: {r.stderr}")
        self.proc = spawn(["runuser", "-u", "postgres", "--", f"{PG_BIN}/postgres", "-D", self.data,
                           "-p", str(self.port), "-k", self.dir, "-c", "listen_addresses=127.0.0.1",
                           "-c", "fsync=off"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until("postgres up", lambda: run(["pg_isready", "-q", "-h", "127.0.0.1", "-p",
                                                str(self.port)]).returncode == 0, timeout=30)

    def psql(self, *cmds, user_env=None):
        args = ["psql", "-X", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres"]
        for c in cmds:
            args += ["-c", c]
        return run(args)

    def stop(self):
        run(["runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl", "-D", self.data, "stop", "-m", "fast"])
        self.proc.wait(15)
        shutil.rmtree(self.dir, ignore_errors=True)


def test_postgres():
    print("== PostgreSQL", flush=True)
    pg = Postgres()
    # pgbench's schema before the agent: its setup traffic is not counted
    r = run(["pgbench", "-i", "-q", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "postgres"])
    check_eq(r.returncode, 0, f"pgbench -i ({r.stderr.strip()[-200:]})")
    agent = Agent("--port", str(pg.port), name="postgres agent")
    print(f"   sonde :{agent.port}  postgres :{pg.port}", flush=True)

    r = pg.psql("CREATE TABLE sonde_items (id int, name text)",
                "INSERT INTO sonde_items VALUES (1, 'secret-literal-a')",
                "INSERT INTO sonde_items VALUES (2, 'secret-literal-b')",
                "SELECT name FROM sonde_items WHERE id IN (1, 2, 3)",
                "SELEC oops FROM nowhere")
    check("syntax error" in r.stderr, f"psql reported the syntax error ({r.stderr.strip()})")
    N, NP = 20, 10
    r = run(["pgbench", "-n", "-t", str(N), "-c", "1", "-h", "127.0.0.1", "-p", str(pg.port),
             "-U", "postgres", "postgres"])
    check_eq(r.returncode, 0, f"pgbench simple ({r.stderr.strip()[-200:]})")
    r = run(["pgbench", "-n", "-M", "prepared", "-t", str(NP), "-c", "1", "-h", "127.0.0.1",
             "-p", str(pg.port), "-U", "postgres", "postgres"])
    check_eq(r.returncode, 0, f"pgbench prepared ({r.stderr.strip()[-200:]})")

    # libpq pipeline mode: three queries sent before any result is read
    script = os.path.join(pg.dir, "pipeline.sql")
    with open(script, "w") as f:
        f.write("\\startpipeline\nSELECT 1;\nSELECT 2 AS two;\nSELECT 3;\n\\endpipeline\n")
    NPL = 5
    r = run(["pgbench", "-n", "-M", "extended", "-f", script, "-t", str(NPL), "-c", "1", "-h",
             "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "postgres"])
    check_eq(r.returncode, 0, f"pgbench pipeline ({r.stderr.strip()[-200:]})")

    T = N + NP
    want_client = {
        ("postgresql", "CREATE", "sonde_items", "", "psql"): 1,
        ("postgresql", "INSERT", "sonde_items", "", "psql"): 2,
        ("postgresql", "SELECT", "sonde_items", "", "psql"): 1,
        ("postgresql", "SELEC", "", "42601", "psql"): 1,
        # pgbench's own start-up queries, once per builtin-script run
        ("postgresql", "SELECT", "pgbench_branches", "", "pgbench"): 2,
        ("postgresql", "SELECT", "pg_catalog.pg_class", "", "pgbench"): 2,
        ("postgresql", "SELECT", "", "", "pgbench"): 3 * NPL,
        ("postgresql", "BEGIN", "", "", "pgbench"): T,
        ("postgresql", "UPDATE", "pgbench_accounts", "", "pgbench"): T,
        ("postgresql", "SELECT", "pgbench_accounts", "", "pgbench"): T,
        ("postgresql", "UPDATE", "pgbench_tellers", "", "pgbench"): T,
        ("postgresql", "UPDATE", "pgbench_branches", "", "pgbench"): T,
        ("postgresql", "INSERT", "pgbench_history", "", "pgbench"): T,
        ("postgresql", "END", "", "", "pgbench"): T,
    }

    def have_all(m):
        c = counts(m, CLIENT_H)
        return all(c.get(k, 0) >= v for k, v in want_client.items())
    m = settle(agent, have_all)
    got = counts(m, CLIENT_H)
    print("   client counts:", json.dumps({"|".join(k): v for k, v in sorted(got.items())}), flush=True)
    for k, v in want_client.items():
        check_eq(got.get(k, 0), v, f"client count {k}")
    srv = counts(m, SERVER_H)
    print("   server counts:", json.dumps({"|".join(k): v for k, v in sorted(srv.items())}), flush=True)
    for k, v in want_client.items():
        sk = k[:4] + ("postgres",)
        if k[4] == "pgbench" or k[4] == "psql":
            want = v + (want_client.get(k[:4] + ("psql" if k[4] == "pgbench" else "pgbench",), 0))
            check_eq(srv.get(sk, 0), want, f"server count {sk}")

    spans = db_spans(agent, "postgresql")
    err = [s for s in spans if s.get("error_type") == "42601" and s["kind"] == "client"]
    check_eq(len(err), 1, "one client error span for the syntax error")
    if err:
        check_eq(err[0]["db_status"], "42601", "SQLSTATE of the syntax error")
        check_eq(err[0]["db_query"], "SELEC oops FROM nowhere", "error span query")
        check_eq(err[0]["peer_port"], pg.port, "error span server port")
    sel = [s for s in spans if s["comm"] == "psql" and s["db_operation"] == "SELECT"]
    check_eq([s["db_query"] for s in sel], ["SELECT name FROM sonde_items WHERE id IN (?)"],
             "normalised SELECT, IN list collapsed")
    check(not any("secret-literal" in s["db_query"] for s in spans), "no literal in any db_query")
    prep = [s for s in spans if s["comm"] == "pgbench" and s["kind"] == "client" and
            s["db_query"].startswith("UPDATE pgbench_accounts SET abalance = abalance + $1")]
    check_eq(len(prep), NP, "prepared statements named by their SQL ($1 kept)")
    simple = [s for s in spans if s["comm"] == "pgbench" and s["kind"] == "client" and
              s["db_query"] == "UPDATE pgbench_accounts SET abalance = abalance + ? WHERE aid = ?;"]
    check_eq(len(simple), N, "simple-protocol UPDATE normalised")
    check(all(s["duration_ms"] >= 0 for s in spans), "durations non-negative")
    # libpq uprobes: every client span above was also a PQsend* call, joined
    # to it (one span, not two); none stood alone
    calls = {o: series(m, "sonde_db_client_calls_total", outcome=o) for o in ("joined", "alone")}
    check_eq(calls, {"joined": float(sum(want_client.values())), "alone": 0.0},
             "libpq calls joined to their wire spans")

    postgres_failures(pg)
    pg.stop()


def postgres_failures(pg):
    """pg_terminate_backend under a running query (the backend sends FATAL
    57P01, then hangs up: one span with that SQLSTATE, not a second
    connection_closed one), and a psql killed while waiting
    (request_cancelled). The libpq calls still join these spans."""
    print("   failures: pg_terminate_backend, psql killed by timeout", flush=True)
    agent = Agent("--port", str(pg.port), name="postgres failure agent")
    base = ["psql", "-X", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-d", "postgres", "-tA"]
    sleeper = spawn(base + ["-c", "SELECT pg_sleep(10)"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    text=True)
    active = "FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(10)' AND state = 'active'"
    _, polls = polled("psql running pg_sleep", lambda: run(base + ["-c", f"SELECT count(*) {active}"]
                                                          ).stdout.strip() == "1")
    time.sleep(0.3)
    r = run(base + ["-c", f"SELECT count(pg_terminate_backend(pid)) {active}"])
    check_eq(r.stdout.strip(), "1", "pg_terminate_backend ended one backend")
    out, err = sleeper.communicate(timeout=10)
    check("terminating connection due to administrator command" in err,
          f"psql saw the FATAL ({err.strip()[:120]})")
    # killed 1 s after it started (start-up and connect included), 3 s before its answer
    r = run(["timeout", "-s", "KILL", "1"] + base + ["-c", "SELECT pg_sleep(4)"])
    # timeout's KILL reaches its own process group: -9, or 137 from timeout
    check(r.returncode in (-9, 137), f"psql killed by timeout -s KILL 1 (status {r.returncode})")

    want = {("postgresql", "SELECT", "pg_stat_activity", "", "psql"): polls + 1,
            ("postgresql", "SELECT", "", "57P01", "psql"): 1,
            ("postgresql", "SELECT", "", "request_cancelled", "psql"): 1}
    m = settle(agent, lambda m: counts(m, CLIENT_H) == want)
    got = counts(m, CLIENT_H)
    print("   failure client counts:", json.dumps({"|".join(k): v for k, v in sorted(got.items())}),
          flush=True)
    check_eq(got, want, "failure client counts, exactly these label sets")
    calls = {o: series(m, "sonde_db_client_calls_total", outcome=o) for o in ("joined", "alone")}
    check_eq(calls, {"joined": float(polls + 3), "alone": 0.0}, "libpq calls joined, failed spans too")
    spans = db_spans(agent, "postgresql")
    check_eq(failed_view([s for s in spans if s["db_query"] == "SELECT pg_sleep(?)"], "SELECT"),
             [("57P01", "57P01", "SELECT pg_sleep(?)", False),
              ("request_cancelled", "", "SELECT pg_sleep(?)", False)],
             "pg_sleep spans: one 57P01 (no duplicate), one request_cancelled")
    check_waited(spans, "SELECT", "request_cancelled", 500, 2000, "cancelled pg_sleep")
    check_waited(spans, "SELECT", "57P01", 250, 5000, "terminated pg_sleep")


def test_postgres_tls():
    """sslmode=require: the wire is ciphertext after the SSLRequest; spans
    come from the libpq uprobe alone, ended by the next call or the exit."""
    print("== PostgreSQL over TLS (libpq uprobes)", flush=True)
    pg = Postgres()
    key, crt = os.path.join(pg.dir, "server.key"), os.path.join(pg.dir, "server.crt")
    r = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
             "-days", "1", "-keyout", key, "-out", crt])
    check_eq(r.returncode, 0, "self-signed certificate")
    pw = pwd.getpwnam("postgres")
    for f in (key, crt):
        os.chown(f, pw.pw_uid, pw.pw_gid)
        os.chmod(f, 0o600)
    r = run(["runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl", "-D", pg.data, "stop", "-m", "fast"])
    pg.proc.wait(15)
    pg.proc = spawn(["runuser", "-u", "postgres", "--", f"{PG_BIN}/postgres", "-D", pg.data,
                     "-p", str(pg.port), "-k", pg.dir, "-c", "listen_addresses=127.0.0.1",
                     "-c", "fsync=off", "-c", "ssl=on", "-c", f"ssl_cert_file={crt}",
                     "-c", f"ssl_key_file={key}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until("postgres (ssl) up", lambda: run(["pg_isready", "-q", "-h", "127.0.0.1", "-p",
                                                 str(pg.port)]).returncode == 0, timeout=30)
    has_tls_tracer = "--no-tls" in run([os.path.join(os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))), "build", "sonde"), "--help"]).stdout
    # uprobe-only: the OpenSSL tracer (when built in) is turned off
    postgres_tls_case(pg, ["--no-tls"] if has_tls_tracer else [], plaintext=False)
    if has_tls_tracer:
        # with SSL_read/SSL_write plaintext, the wire parser sees the queries:
        # the libpq calls must join those spans, not add to them
        postgres_tls_case(pg, [], plaintext=True)
    else:
        print("   note: this build has no OpenSSL tracer (--no-tls): the TLS plaintext "
              "path of the PostgreSQL parser is not tested here", flush=True)
    pg.stop()


def postgres_tls_case(pg, args, plaintext):
    agent = Agent("--port", str(pg.port), *args, name="postgres tls agent")
    dsn = f"host=127.0.0.1 port={pg.port} user=postgres dbname=postgres sslmode=require"
    r = run(["psql", "-X", dsn, "-c", "CREATE TABLE IF NOT EXISTS sonde_tls (id int)",
             "-c", "INSERT INTO sonde_tls VALUES (42)", "-c", "SELECT id FROM sonde_tls WHERE id = 42",
             "-c", "SELEC tls_oops"])
    check("syntax error" in r.stderr, f"psql over TLS ran ({r.stderr.strip()[-200:]})")
    r = run(["psql", "-X", dsn, "-c", "SHOW ssl"])
    check_eq(r.stdout.split()[2] if len(r.stdout.split()) > 2 else r.stdout, "on", "connection used TLS")
    # uprobe only: the SQLSTATE is inside the encrypted reply, not known
    err = "42601" if plaintext else ""
    want = {("postgresql", "CREATE", "sonde_tls", "", "psql"): 1,
            ("postgresql", "INSERT", "sonde_tls", "", "psql"): 1,
            ("postgresql", "SELECT", "sonde_tls", "", "psql"): 1,
            ("postgresql", "SELEC", "", err, "psql"): 1,
            ("postgresql", "SHOW", "", "", "psql"): 1}

    def have_all(m):
        c = counts(m, CLIENT_H)
        return all(c.get(k, 0) >= v for k, v in want.items())
    m = settle(agent, have_all)
    got = counts(m, CLIENT_H)
    mode = "TLS plaintext + uprobe" if plaintext else "uprobe only"
    print(f"   [{mode}] client counts:", json.dumps({"|".join(k): v for k, v in sorted(got.items())}),
          flush=True)
    check_eq(got, want, f"[{mode}] client counts, exactly these label sets")
    srv_want = {k[:4] + ("postgres",): v for k, v in want.items()} if plaintext else {}
    check_eq(counts(m, SERVER_H), srv_want, f"[{mode}] server spans")
    calls = {o: series(m, "sonde_db_client_calls_total", outcome=o) for o in ("joined", "alone")}
    check_eq(calls, {"joined": 5.0 if plaintext else 0.0, "alone": 0.0 if plaintext else 5.0},
             f"[{mode}] libpq calls joined / alone")
    spans = [s for s in db_spans(agent, "postgresql") if s["kind"] == "client"]
    check_eq(sorted(s["db_query"] for s in spans),
             sorted(["CREATE TABLE IF NOT EXISTS sonde_tls (id int)", "INSERT INTO sonde_tls VALUES (?)",
                     "SELECT id FROM sonde_tls WHERE id = ?", "SELEC tls_oops", "SHOW ssl"]),
             f"[{mode}] client span queries, normalised")
    check(all(s["duration_ms"] > 0 for s in spans), f"[{mode}] spans have a duration")
    check_eq(sorted(bool(s.get("tls")) for s in spans), [plaintext] * 5, f"[{mode}] tls flag")


# ---- MariaDB ----

class MariaDB:
    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="sonde-mariadb-")
        self.data = os.path.join(self.dir, "data")
        r = run(["mariadb-install-db", "--no-defaults", f"--datadir={self.data}", "--user=root",
                 "--auth-root-authentication-method=normal", "--skip-test-db"])
        if r.returncode:
            raise SystemExit(f"FAIL: mariadb-install-db: {r.stderr}")
        key, crt = os.path.join(self.dir, "server.key"), os.path.join(self.dir, "server.crt")
        r = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                 "-days", "1", "-keyout", key, "-out", crt])
        if r.returncode:
            raise SystemExit(f"FAIL: openssl req: {r.stderr}")
        self.proc = spawn(["mariadbd", "--no-defaults", f"--datadir={self.data}", f"--port={self.port}",
                           f"--ssl-cert={crt}", f"--ssl-key={key}",
                           "--bind-address=127.0.0.1", f"--socket={self.dir}/sock", "--user=root",
                           "--skip-grant-tables", "--skip-log-bin", "--skip-name-resolve",
                           f"--pid-file={self.dir}/pid", f"--log-error={self.dir}/err.log",
                           "--innodb-buffer-pool-size=16M"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until("mariadb up", lambda: self.cli("SELECT 1").returncode == 0, timeout=30)

    def cli(self, sql, db=None):
        args = ["mariadb", "--no-defaults", "--protocol=TCP", "-h", "127.0.0.1", "-P", str(self.port),
                "-u", "root", "-N", "-B", "--skip-ssl"]
        if db:
            args.append(db)
        return run(args + ["-e", sql])

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)
        shutil.rmtree(self.dir, ignore_errors=True)


def test_mariadb():
    print("== MariaDB", flush=True)
    db = MariaDB()
    check_eq(db.cli("CREATE DATABASE sonde").returncode, 0, "create database")
    agent = Agent("--port", str(db.port), name="mariadb agent")
    print(f"   sonde :{agent.port}  mariadb :{db.port}", flush=True)

    # PyMySQL: wire parsing alone (no client library to hook)
    r = run([SYSTEM_PY, os.path.join(os.path.dirname(os.path.abspath(__file__)), "pymysql_client.py"),
             str(db.port)])
    check_eq(r.stdout.split("\n"), ["rows 2", "error 1064", "executed 1", "executed 1", ""],
             f"pymysql client ({r.stderr.strip()[-300:]})")
    py_svc = os.path.basename(os.path.realpath(SYSTEM_PY))
    # the mariadb CLI (libmariadb): statements split on ';'
    r = db.cli("SELECT COUNT(*) FROM sonde_items; UPDATE sonde_items SET name = 'x' WHERE id = 2; "
               "DELETE FROM sonde_items WHERE id = 99", db="sonde")
    check_eq(r.stdout.split(), ["3"], f"mariadb cli ({r.stderr.strip()})")

    # a libmariadb client: its mysql_* calls (uprobes) join the wire spans
    here = os.path.dirname(os.path.abspath(__file__))
    mdbc = os.path.join(db.dir, "sonde-mdbc")
    r = run(["gcc", "-O1", "-I/usr/include/mariadb", os.path.join(here, "mariadb_client.c"),
             "-lmariadb", "-o", mdbc])
    check_eq(r.returncode, 0, f"build the libmariadb client ({r.stderr.strip()[-300:]})")
    r = run([mdbc, str(db.port)])
    check_eq(r.stdout.split("\n"), ["cipher none", "ok", "ok", "error 1064", "executed", "executed", ""],
             f"libmariadb client, plaintext ({r.stderr.strip()})")
    want = {
        ("mariadb", "CREATE", "sonde_lib", "", "sonde-mdbc"): 1,
        ("mariadb", "INSERT", "sonde_lib", "", "sonde-mdbc"): 1,
        ("mariadb", "SELEC", "", "1064", "sonde-mdbc"): 1,
        ("mariadb", "SELECT", "sonde_lib", "", "sonde-mdbc"): 2,
        ("mariadb", "CREATE", "sonde_items", "", py_svc): 1,
        ("mariadb", "INSERT", "sonde_items", "", py_svc): 3,
        ("mariadb", "SELECT", "sonde_items", "", py_svc): 3,	# 1 query + 2 executes
        ("mariadb", "SELEC", "", "1064", py_svc): 1,
        ("mariadb", "SELECT", "sonde_items", "", "mariadb"): 1,
        ("mariadb", "UPDATE", "sonde_items", "", "mariadb"): 1,
        ("mariadb", "DELETE", "sonde_items", "", "mariadb"): 1,
    }

    def have_all(m):
        c = counts(m, CLIENT_H)
        return all(c.get(k, 0) >= v for k, v in want.items())
    m = settle(agent, have_all)
    got = counts(m, CLIENT_H)
    print("   client counts:", json.dumps({"|".join(k): v for k, v in sorted(got.items())}), flush=True)
    for k, v in want.items():
        check_eq(got.get(k, 0), v, f"client count {k}")
    srv = counts(m, SERVER_H)
    print("   server counts:", json.dumps({"|".join(k): v for k, v in sorted(srv.items())}), flush=True)
    merged = {}
    for k, v in want.items():
        merged[k[:4] + ("mariadbd",)] = merged.get(k[:4] + ("mariadbd",), 0) + v
    for k, v in merged.items():
        check_eq(srv.get(k, 0), v, f"server count {k}")

    calls = {o: series(m, "sonde_db_client_calls_total", outcome=o) for o in ("joined", "alone")}
    check_eq(calls, {"joined": 5.0, "alone": 0.0}, "libmariadb calls joined to their wire spans")

    # the same client over TLS: the wire is ciphertext, spans come from the uprobes
    r = run([mdbc, str(db.port), "tls"])
    check_eq(r.stdout.split("\n"), ["cipher yes", "ok", "ok", "error 1064", "executed", "executed", ""],
             f"libmariadb client over TLS ({r.stderr.strip()})")
    tls_want = {("mysql", "CREATE", "sonde_lib", "", "sonde-mdbc"): 1,
                ("mysql", "INSERT", "sonde_lib", "", "sonde-mdbc"): 1,
                ("mysql", "SELEC", "", "", "sonde-mdbc"): 1,
                ("mysql", "SELECT", "sonde_lib", "", "sonde-mdbc"): 2}

    def have_tls(m):
        c = counts(m, CLIENT_H)
        return all(c.get(k, 0) >= v for k, v in tls_want.items())
    m = settle(agent, have_tls)
    got = counts(m, CLIENT_H)
    check_eq({k: v for k, v in got.items() if k[0] == "mysql"}, tls_want,
             "uprobe-only spans for the TLS connection (system unknown: mysql)")
    check_eq(series(m, "sonde_db_client_calls_total", outcome="alone"), 5.0, "libmariadb calls alone")
    spans = db_spans(agent, "mariadb")
    check(not any("secret-literal" in s["db_query"] for s in spans), "no literal in any db_query")
    ins = {s["db_query"] for s in spans if s["db_operation"] == "INSERT" and s["comm"] == "python3"}
    check_eq(ins, {"INSERT INTO sonde_items VALUES (?, ?)"}, "normalised INSERT")
    ex = [s for s in spans if s["kind"] == "client" and
          s["db_query"] == "SELECT COUNT(*) FROM sonde_items WHERE id > ?"]
    check_eq(len(ex), 2, "COM_STMT_EXECUTE spans named by the prepared SQL")
    err = [s for s in spans if s["kind"] == "client" and s.get("error_type")]
    check_eq(sorted((s["comm"], s["db_status"], s["error_type"]) for s in err),
             [("python3", "1064", "1064"), ("sonde-mdbc", "1064", "1064")], "MySQL error code")
    tls = [s["db_query"] for s in db_spans_read(agent, "mysql")]
    check_eq(sorted(tls), sorted(["CREATE TABLE IF NOT EXISTS sonde_lib (id INT)",
                                  "INSERT INTO sonde_lib VALUES (?)", "SELEC lib_oops",
                                  "SELECT COUNT(*) FROM sonde_lib WHERE id > ?",
                                  "SELECT COUNT(*) FROM sonde_lib WHERE id > ?"]),
             "TLS uprobe spans: SQL from mysql_real_query and the prepared statement")
    mariadb_failures(db)
    db.stop()


def mariadb_failures(db):
    """KILL <id> under a running query (the client only sees the hang-up:
    ERROR 2013, connection_closed) and a mariadb client killed while it
    waits (request_cancelled)."""
    print("   failures: KILL <id>, mariadb killed by timeout", flush=True)
    agent = Agent("--port", str(db.port), name="mariadb failure agent")
    sleeper = spawn(["mariadb", "--no-defaults", "--protocol=TCP", "-h", "127.0.0.1", "-P", str(db.port),
                     "-u", "root", "-N", "-B", "--skip-ssl", "-e", "SELECT SLEEP(10)"],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ids, polls = polled("mariadb running SLEEP", lambda: db.cli(
        "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO = 'SELECT SLEEP(10)'").stdout.split())
    time.sleep(0.3)
    check_eq(db.cli(f"KILL {ids[0]}").returncode, 0, "KILL the sleeping connection")
    out, err = sleeper.communicate(timeout=10)
    check("Lost connection" in err, f"the client lost its connection ({err.strip()[-80:]})")
    r = run(["timeout", "-s", "KILL", "1", "mariadb", "--no-defaults", "--protocol=TCP", "-h", "127.0.0.1",
             "-P", str(db.port), "-u", "root", "--skip-ssl", "-e", "SELECT SLEEP(4)"])
    # timeout's KILL reaches its own process group: -9, or 137 from timeout
    check(r.returncode in (-9, 137), f"mariadb killed by timeout -s KILL 1 (status {r.returncode})")

    want = {("mariadb", "SELECT", "information_schema.PROCESSLIST", "", "mariadb"): polls,
            ("mariadb", "KILL", "", "", "mariadb"): 1,
            ("mariadb", "SELECT", "", "connection_closed", "mariadb"): 1,
            ("mariadb", "SELECT", "", "request_cancelled", "mariadb"): 1}
    m = settle(agent, lambda m: counts(m, CLIENT_H) == want)
    got = counts(m, CLIENT_H)
    print("   failure client counts:", json.dumps({"|".join(k): v for k, v in sorted(got.items())}),
          flush=True)
    check_eq(got, want, "failure client counts, exactly these label sets")
    spans = db_spans(agent, "mariadb")
    check_eq(failed_view([s for s in spans if s["db_query"] == "SELECT SLEEP(?)"], "SELECT"),
             [("connection_closed", "", "SELECT SLEEP(?)", False),
              ("request_cancelled", "", "SELECT SLEEP(?)", False)],
             "SLEEP spans: connection_closed (KILL), request_cancelled (client killed)")
    check_waited(spans, "SELECT", "connection_closed", 250, 5000, "killed SLEEP")
    check_waited(spans, "SELECT", "request_cancelled", 500, 2000, "cancelled SLEEP")


# ---- Redis ----

def test_redis():
    print("== Redis", flush=True)
    port = free_port()
    d = tempfile.mkdtemp(prefix="sonde-redis-")
    srv = spawn(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", d], stdout=subprocess.DEVNULL)
    wait_until("redis up", lambda: run(["redis-cli", "-p", str(port), "PING"]).stdout.strip() == "PONG")
    redis_svc = os.path.basename(os.path.realpath("/proc/%d/exe" % srv.pid))
    agent = Agent("--port", str(port), name="redis agent")
    print(f"   sonde :{agent.port}  redis :{port}", flush=True)
    cli = lambda *a: run(["redis-cli", "-p", str(port), *a]).stdout.strip()  # noqa: E731
    check_eq(cli("SET", "sonde:key", "secret-value"), "OK", "redis-cli SET")
    check_eq(cli("GET", "sonde:key"), "secret-value", "redis-cli GET")
    check("ERR" in cli("NOSUCHCMD", "x"), "redis-cli unknown command")
    check_eq(cli("LPUSH", "sonde:list", "a", "b", "c"), "3", "redis-cli LPUSH")
    r = run(["redis-benchmark", "-p", str(port), "-n", "200", "-c", "1", "-t", "get,set", "-q"])
    check_eq(r.returncode, 0, "redis-benchmark")
    r = run(["redis-benchmark", "-p", str(port), "-n", "100", "-c", "1", "-P", "10", "-t", "incr", "-q"])
    check_eq(r.returncode, 0, "redis-benchmark pipelined")

    want = {
        ("redis", "SET", "", "", "redis-cli"): 1, ("redis", "GET", "", "", "redis-cli"): 1,
        ("redis", "NOSUCHCMD", "", "ERR", "redis-cli"): 1, ("redis", "LPUSH", "", "", "redis-cli"): 1,
        ("redis", "SET", "", "", "redis-benchmark"): 200, ("redis", "GET", "", "", "redis-benchmark"): 200,
        ("redis", "INCR", "", "", "redis-benchmark"): 100,
        ("redis", "CONFIG", "", "", "redis-benchmark"): 4,	# "CONFIG GET save/appendonly" per run
    }

    def have_all(m):
        c = counts(m, CLIENT_H)
        return all(c.get(k, 0) >= v for k, v in want.items())
    m = settle(agent, have_all)
    got = counts(m, CLIENT_H)
    print("   client counts:", json.dumps({"|".join(k): v for k, v in sorted(got.items())}), flush=True)
    check_eq(got, want, "client counts, exactly these label sets")
    srvc = counts(m, SERVER_H)
    merged = {}
    for k, v in want.items():
        merged[k[:4] + (redis_svc,)] = merged.get(k[:4] + (redis_svc,), 0) + v
    check_eq(srvc, merged, "server counts, exactly these label sets")
    spans = db_spans(agent, "redis")
    check(not any("secret" in s["db_query"] or "sonde:" in s["db_query"] for s in spans),
          "no key or value in any db_query")
    lp = [s["db_query"] for s in spans if s["db_operation"] == "LPUSH" and s["kind"] == "client"]
    check_eq(lp, ["LPUSH ? ? ? ?"], "LPUSH shape")
    err = [s for s in spans if s["kind"] == "client" and s.get("error_type")]
    check_eq([(s["db_operation"], s["db_status"]) for s in err], [("NOSUCHCMD", "ERR")], "error span")

    # trace context: a Redis call made while serving an HTTP request is a
    # child of that request's server span
    http_port = free_port()
    web = spawn([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "redis_http.py"),
                 str(http_port), str(port)], stdout=subprocess.PIPE, text=True)
    check_eq(web.stdout.readline().strip(), "ready", "HTTP server calling Redis started")
    traced = Agent("--pid", str(web.pid), name="trace agent")
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/sonde-db-trace", timeout=5) as r:
        check_eq(r.read(), b"redis said $-1\n", "HTTP handler called Redis")

    def both(m):
        c = counts(m, CLIENT_H)
        return c.get(("redis", "GET", "", "", os.path.basename(os.path.realpath(sys.executable))), 0) >= 1
    settle(traced, both)
    tspans = db_spans_all(traced)
    srv_span = [s for s in tspans if s.get("target") == "/sonde-db-trace" and s["kind"] == "server"]
    db_span = [s for s in tspans if s.get("db_system") == "redis" and s["kind"] == "client"]
    check_eq((len(srv_span), len(db_span)), (1, 1), "one HTTP server span, one Redis client span")
    if srv_span and db_span:
        check_eq(db_span[0]["trace_id"], srv_span[0]["trace_id"], "Redis span in the request's trace")
        check_eq(db_span[0]["parent_span_id"], srv_span[0]["span_id"], "Redis span's parent: the server span")
        check_eq(db_span[0]["tid"], srv_span[0]["tid"], "same thread")
    redis_failures(port, redis_svc, web, http_port)
    srv.terminate()
    srv.wait(10)
    shutil.rmtree(d, ignore_errors=True)


def redis_failures(port, redis_svc, web, http_port):
    """BLPOP under CLIENT KILL (connection_closed) and a redis-cli killed
    in BLPOP (request_cancelled); Redis itself still counts both as
    unanswered on its side. Then a killed call made while serving an HTTP
    request: a failed child of that request's server span."""
    print("   failures: CLIENT KILL, SIGKILL, a killed call inside an HTTP request", flush=True)
    agent = Agent("--port", str(port), name="redis failure agent")
    cli = lambda *a: run(["redis-cli", "-p", str(port), *a]).stdout.strip()  # noqa: E731

    def blocked():
        return [l.split()[0].split("=", 1)[1] for l in cli("CLIENT", "LIST").splitlines()
                if " cmd=blpop " in l]
    b = spawn(["redis-cli", "-p", str(port), "BLPOP", "sonde:never", "0"], stdout=subprocess.PIPE,
              stderr=subprocess.PIPE, text=True)
    ids, polls = polled("redis-cli blocked in BLPOP", blocked)
    time.sleep(0.5)
    check_eq(cli("CLIENT", "KILL", "ID", ids[0]), "1", "CLIENT KILL ID")
    out, err = b.communicate(timeout=10)
    check("Server closed the connection" in out + err, f"redis-cli saw the hang-up ({(out + err).strip()})")
    k = spawn(["redis-cli", "-p", str(port), "BLPOP", "sonde:never", "0"], stdout=subprocess.DEVNULL)
    _, polls2 = polled("second redis-cli blocked in BLPOP", blocked)
    time.sleep(0.5)
    k.kill()
    k.wait(10)

    n_client = polls + polls2 + 1
    want = {("redis", "BLPOP", "", "connection_closed", "redis-cli"): 1,
            ("redis", "BLPOP", "", "request_cancelled", "redis-cli"): 1,
            ("redis", "CLIENT", "", "", "redis-cli"): n_client}

    def done(m):
        return (counts(m, CLIENT_H) == want and
                series(m, "sonde_db_unanswered_operations_total", protocol="redis") == 2.0)
    m = settle(agent, done)
    got = counts(m, CLIENT_H)
    print("   failure client counts:", json.dumps({"|".join(k): v for k, v in sorted(got.items())}),
          flush=True)
    check_eq(got, want, "failure client counts, exactly these label sets")
    check_eq(counts(m, SERVER_H), {("redis", "CLIENT", "", "", redis_svc): n_client},
             "server side unchanged: no BLPOP span")
    check_eq(series(m, "sonde_db_unanswered_operations_total", protocol="redis"), 2.0,
             "server side: the two BLPOPs counted unanswered, as before")
    spans = db_spans(agent, "redis")
    check_eq(failed_view(spans, "BLPOP"), [("connection_closed", "", "BLPOP ? ?", False),
                                           ("request_cancelled", "", "BLPOP ? ?", False)],
             "BLPOP spans: connection_closed (CLIENT KILL), request_cancelled (SIGKILL)")
    check_waited(spans, "BLPOP", "connection_closed", 500, 5000, "killed BLPOP")
    check_waited(spans, "BLPOP", "request_cancelled", 500, 5000, "cancelled BLPOP")

    traced = Agent("--pid", str(web.pid), name="trace failure agent")
    status = {}
    t = threading.Thread(target=lambda: status.update(
        code=http_status(f"http://127.0.0.1:{http_port}/sonde-db-kill")))
    t.start()
    ids, _ = polled("the HTTP handler blocked in BLPOP", blocked)
    check_eq(cli("CLIENT", "KILL", "ID", ids[0]), "1", "CLIENT KILL the handler's Redis client")
    t.join(10)
    check_eq(status.get("code"), 502, "the handler answered 502 after losing Redis")
    py_svc = os.path.basename(os.path.realpath(sys.executable))
    settle(traced, lambda m: counts(m, CLIENT_H).get(("redis", "BLPOP", "", "connection_closed", py_svc)))
    tspans = db_spans_all(traced)
    srv_span = [s for s in tspans if s.get("target") == "/sonde-db-kill" and s["kind"] == "server"]
    db_span = [s for s in tspans if s.get("db_system") == "redis" and s["kind"] == "client"]
    check_eq((len(srv_span), len(db_span)), (1, 1), "one HTTP server span, one failed Redis span")
    if srv_span and db_span:
        check_eq((srv_span[0]["status"], db_span[0]["error_type"], db_span[0]["db_operation"]),
                 (502, "connection_closed", "BLPOP"), "502 server span, failed BLPOP")
        check_eq(db_span[0]["trace_id"], srv_span[0]["trace_id"], "failed Redis span in the request's trace")
        check_eq(db_span[0]["parent_span_id"], srv_span[0]["span_id"],
                 "failed Redis span's parent: the server span")


def main():
    if os.geteuid() != 0:
        raise SystemExit("FAIL: the integration tests load BPF programs and must run as root")
    t0 = time.monotonic()
    only = sys.argv[1:] or ["postgres", "mariadb", "redis"]
    if "postgres" in only:
        test_postgres()
    if "postgres" in only or "postgres_tls" in only:
        test_postgres_tls()
    if "mariadb" in only and "test_mariadb" in globals():
        globals()["test_mariadb"]()
    if "redis" in only and "test_redis" in globals():
        globals()["test_redis"]()
    print(f"   took {time.monotonic() - t0:.1f}s", flush=True)
    finish("test_db")


if __name__ == "__main__":
    main()
