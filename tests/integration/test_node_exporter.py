"""Integration: sonde's node_* host metrics against the real Prometheus
node_exporter (Debian package prometheus-node-exporter, 1.5) on this host.

Both run side by side on loopback ports; node_exporter with only the
collectors sonde covers and upstream 1.5's default filters (Debian's build
changes two of them, undone by flags below). For every covered collector the
family names, TYPEs and label-name sets must match exactly, and so must the
values of the identifying labels (device, mountpoint, cpu, mode, ...).
Values that cannot move between two scrapes (memory size, CPU count,
filesystem sizes, boot time, uname/os labels, limits) must be equal;
counters must not go backwards, and a node_exporter scrape taken between
two sonde scrapes must lie between them. Finally --no-host-metrics must
leave out every node_* family."""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Agent, check, check_eq, finish, free_port, http_get,  # noqa: E402
                     parse_metrics, spawn, wait_until)

COLLECTORS = ["cpu", "meminfo", "loadavg", "stat", "vmstat", "diskstats", "filesystem", "netdev",
              "netstat", "sockstat", "pressure", "uname", "time", "filefd", "entropy", "conntrack",
              "softnet", "os", "timex", "netclass", "textfile", "arp"]
# Collectors whose source this host lacks (no /proc/mdstat, no bonding
# module): both exporters must export nothing for them here, and sonde
# says so with success 0. tests/integration/test_node_fixtures.py compares
# them on /proc and /sys fixture trees instead.
ABSENT_HERE = {"mdadm": "/proc/mdstat", "bonding": "/sys/class/net/bonding_masters",
               "thermal_zone": "/sys/class/thermal/*", "hwmon": "/sys/class/hwmon/*",
               "schedstat": "/proc/schedstat", "nvme": "/sys/class/nvme/*",
               "edac": "/sys/devices/system/edac/mc/mc*",
               "powersupplyclass": "/sys/class/power_supply/*"}  # globs
# node_exporter 1.5's upstream defaults where Debian's build differs:
# Debian adds run|mnt|media to the mount-point exclusions and drops lo.
UPSTREAM_FLAGS = [
    "--collector.filesystem.mount-points-exclude="
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)",
    "--collector.netdev.device-exclude=",
]
# Family name → collector. Order matters: first match wins.
PREFIXES = [
    ("node_cpu_", "cpu"), ("node_memory_", "meminfo"), ("node_load", "loadavg"),
    ("node_boot_time_seconds", "stat"), ("node_context_switches_total", "stat"),
    ("node_forks_total", "stat"), ("node_intr_total", "stat"), ("node_procs_", "stat"),
    ("node_vmstat_", "vmstat"), ("node_disk_", "diskstats"), ("node_filesystem_", "filesystem"),
    ("node_network_receive_", "netdev"), ("node_network_transmit_queue_length", "netclass"),
    ("node_network_transmit_", "netdev"), ("node_network_", "netclass"), ("node_netstat_", "netstat"), ("node_sockstat_", "sockstat"),
    ("node_pressure_", "pressure"), ("node_uname_", "uname"), ("node_time_", "time"),
    ("node_filefd_", "filefd"), ("node_entropy_", "entropy"), ("node_nf_conntrack_", "conntrack"),
    ("node_softnet_", "softnet"), ("node_os_", "os"), ("node_timex_", "timex"),
    ("node_textfile_", "textfile"), ("node_custom_", "textfile"),
    ("node_md_", "mdadm"), ("node_bonding_", "bonding"), ("node_arp_", "arp"),
    ("node_thermal_zone_", "thermal_zone"), ("node_hwmon_", "hwmon"),
    ("node_schedstat_", "schedstat"), ("node_edac_", "edac"), ("node_nvme_", "nvme"), ("node_cooling_device_", "thermal_zone"),
    ("node_power_supply_", "powersupplyclass"),
]
# node_exporter's own families, not part of any collector.
NE_SELF = ("node_exporter_build_info", "node_scrape_collector_")
# Labels that identify a series: their values must match exactly.
KEY_LABELS = ("device", "mountpoint", "fstype", "cpu", "mode", "clocksource", "time_zone",
              "core", "package")
# Families whose every label value is a stable fact of the host.
STABLE_INFO = ("node_uname_info", "node_os_info", "node_os_version", "node_disk_info",
               "node_time_clocksource_available_info", "node_time_clocksource_current_info",
               "node_time_zone_offset_seconds", "node_network_info")
# Values equal in any two scrapes (series by series).
STABLE_VALUES = ("node_memory_MemTotal_bytes", "node_memory_SwapTotal_bytes",
                 "node_boot_time_seconds", "node_filesystem_size_bytes", "node_filesystem_files",
                 "node_filesystem_readonly", "node_filesystem_device_error",
                 "node_filefd_maximum", "node_entropy_pool_size_bits",
                 "node_nf_conntrack_entries_limit", "node_time_zone_offset_seconds",
                 "node_memory_Hugepagesize_bytes", "node_os_version",
                 "node_timex_tick_seconds", "node_timex_status", "node_timex_sync_status",
                 "node_timex_tai_offset_seconds", "node_timex_loop_time_constant",
                 "node_network_mtu_bytes", "node_network_iface_id", "node_network_flags",
                 "node_network_transmit_queue_length", "node_network_up",
                 "node_network_speed_bytes", "node_network_protocol_type",
                 "node_textfile_mtime_seconds", "node_textfile_scrape_error",
                 "node_custom_backup_age_seconds")
# /proc/stat CPU times are clamped against going backwards by each exporter
# on its own: allow one tick per series on the sandwich check.
SANDWICH_SLACK = {"node_cpu_seconds_total": 0.011, "node_cpu_guest_seconds_total": 0.011}


def collector_of(name):
    for prefix, c in PREFIXES:
        if name.startswith(prefix):
            return c
    return None


def families(text):
    """{family: (type, {frozenset(label names)}, {series key: value})}"""
    types = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split()
            types[name] = typ
    out = {n: (t, set(), {}) for n, t in types.items()}
    for (name, labels), v in parse_metrics(text).items():
        if name not in out:
            name = re.sub(r"_(bucket|sum|count)$", "", name)  # histogram series
        if name not in out:
            raise SystemExit(f"FAIL: sample {name} without a TYPE line")
        out[name][1].add(frozenset(k for k, _ in labels))
        out[name][2][labels] = v
    return out


def node_families(fams):
    return {n: f for n, f in fams.items() if n.startswith("node_") and not n.startswith(NE_SELF)}


def key_values(series):
    """The distinct combinations of KEY_LABELS values over a family's series."""
    return sorted({tuple(sorted((k, v) for k, v in labels if k in KEY_LABELS)) for labels in series})


def lint(text):
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                       timeout=30)
    return r.returncode, set((r.stdout + r.stderr).splitlines())


def main():
    if os.geteuid() != 0:
        raise SystemExit("FAIL: the integration tests load BPF programs and must run as root")
    ne_bin = shutil.which("prometheus-node-exporter")
    if not ne_bin:
        raise SystemExit("FAIL: prometheus-node-exporter not installed (scripts/install-deps.sh)")
    r = subprocess.run([ne_bin, "--version"], capture_output=True, text=True, timeout=10)
    version = r.stdout + r.stderr
    print(f"   {version.splitlines()[0] if version else 'node_exporter ?'}", flush=True)

    print("== starting sonde and node_exporter", flush=True)
    # the textfile directory both read: one family a cron job would write
    tf_dir = tempfile.mkdtemp(prefix="sonde-ne-textfile-")
    with open(os.path.join(tf_dir, "backup.prom"), "w") as f:
        f.write('# HELP node_custom_backup_age_seconds Age of the last backup.\n'
                '# TYPE node_custom_backup_age_seconds gauge\n'
                'node_custom_backup_age_seconds{job="db"} 3600\n')
    agent = Agent(f"--collector.textfile.directory={tf_dir}", print_spans=False)
    ne_port = free_port()
    ne_log = open(os.path.join(agent.dir, "node_exporter.log"), "w")
    ne = spawn([ne_bin, f"--web.listen-address=127.0.0.1:{ne_port}", "--collector.disable-defaults",
                *[f"--collector.{c}" for c in COLLECTORS + sorted(ABSENT_HERE)], *UPSTREAM_FLAGS,
                f"--collector.textfile.directory={tf_dir}"],
               stdout=ne_log, stderr=subprocess.STDOUT)
    ne_url = f"http://127.0.0.1:{ne_port}/metrics"

    def ne_up():
        if ne.poll() is not None:
            raise SystemExit(f"FAIL: node_exporter exited with {ne.returncode} (log {ne_log.name})")
        return http_get(ne_url)[0] == 200
    wait_until("node_exporter /metrics 200", ne_up, timeout=15)
    print(f"   sonde :{agent.port}  node_exporter :{ne_port}", flush=True)

    # sonde, node_exporter, sonde: the middle one must lie between the others.
    text_a = agent.metrics_text()
    text_n = http_get(ne_url)[1].decode()
    text_b = agent.metrics_text()
    fa, fn, fb = families(text_a), node_families(families(text_n)), families(text_b)
    sa = node_families(fa)

    print("== collectors reported success", flush=True)
    ok = {dict(k)["collector"]: v for k, v in fa.get("sonde_host_collector_success", ("", set(), {}))[2].items()}
    absent = {c: p for c, p in ABSENT_HERE.items() if not glob.glob(p)}
    if len(absent) < len(ABSENT_HERE):
        print(f"   note: this host has {sorted(set(ABSENT_HERE) - set(absent))}: checked like the others",
              flush=True)
    want_ok = {c: 1.0 for c in COLLECTORS + sorted(set(ABSENT_HERE) - set(absent))}
    want_ok.update({c: 0.0 for c in absent})
    check_eq(ok, want_ok, "sonde_host_collector_success per collector")
    for c in sorted(absent):
        check_eq(sorted(n for n in set(sa) | set(fn) if collector_of(n) == c), [],
                 f"{c}: no families from either exporter without {ABSENT_HERE[c]}")
    foreign = sorted(n for n in sa if collector_of(n) is None)
    check_eq(foreign, [], "sonde node_* families outside the covered collectors")
    unmapped = sorted(n for n in fn if collector_of(n) is None)
    check_eq(unmapped, [], "node_exporter families this test cannot attribute to a collector")

    print("== families, types, label names, identifying label values", flush=True)
    for c in COLLECTORS + sorted(set(ABSENT_HERE) - set(absent)):
        mine = {n for n in sa if collector_of(n) == c}
        theirs = {n for n in fn if collector_of(n) == c}
        check(theirs, f"{c}: node_exporter exports no family (collector broken on this host?)")
        check_eq(sorted(mine - theirs), [], f"{c}: families only sonde has (extra)")
        check_eq(sorted(theirs - mine), [], f"{c}: families only node_exporter has (missing)")
        for n in sorted(mine & theirs):
            check_eq(sa[n][0], fn[n][0], f"{n}: TYPE")
            check_eq(sorted(map(sorted, sa[n][1])), sorted(map(sorted, fn[n][1])),
                     f"{n}: label-name sets")
            km, kt = key_values(sa[n][2]), key_values(fn[n][2])
            check_eq(([dict(k) for k in km if k not in kt], [dict(k) for k in kt if k not in km]),
                     ([], []), f"{n}: identifying label values (only sonde, only node_exporter)")

    print("== stable values", flush=True)
    cpus = {dict(k)["cpu"] for k in sa.get("node_cpu_seconds_total", ("", set(), {}))[2]}
    check_eq(len(cpus), os.cpu_count(), "number of CPUs in node_cpu_seconds_total")
    for n in STABLE_INFO:
        if n in fn or n in sa:
            check_eq(sorted(map(sorted, sa.get(n, ("", set(), {}))[2])),
                     sorted(map(sorted, fn.get(n, ("", set(), {}))[2])), f"{n}: label values")
    for n in STABLE_VALUES:
        if n in fn or n in sa:
            got = {k: v for k, v in sa.get(n, ("", set(), {}))[2].items()}
            want = {k: v for k, v in fn.get(n, ("", set(), {}))[2].items()}
            check_eq(got, want, f"{n}: values")
    check_eq(sa.get("node_custom_backup_age_seconds", ("", set(), {}))[2],
             {frozenset({("job", "db")}): 3600.0}, "textfile: node_custom_backup_age_seconds on sonde's page")
    check(len(sa.get("node_filesystem_size_bytes", ("", set(), {}))[2]) > 0,
          "at least one filesystem reported")
    with open("/proc/meminfo") as f:
        total_kb = int(next(l for l in f if l.startswith("MemTotal:")).split()[1])
    check_eq(sa["node_memory_MemTotal_bytes"][2].get(frozenset()), total_kb * 1024.0,
             "node_memory_MemTotal_bytes = MemTotal kB * 1024")
    tn, ta = fn["node_time_seconds"][2][frozenset()], fa["node_time_seconds"][2][frozenset()]
    check(abs(tn - ta) < 2, f"node_time_seconds within 2 s of node_exporter's ({ta} vs {tn})")

    print("== counters: monotonic, and node_exporter's scrape in between", flush=True)
    backwards, outside, counters = [], [], 0
    for n, (typ, _, series_a) in sa.items():
        if typ != "counter":
            continue
        series_b = fb[n][2]
        series_n = fn.get(n, ("", set(), {}))[2]
        slack = SANDWICH_SLACK.get(n, 0)  # plus float rounding below
        for k, va in series_a.items():
            counters += 1
            vb = series_b.get(k)
            if vb is None or vb < va:
                backwards.append(f"{n}{dict(k)}: {va} -> {vb}")
            vn = series_n.get(k)
            if vn is not None and vb is not None and not (va - slack - 1e-9 * va <= vn <= vb + slack + 1e-9 * vb):
                outside.append(f"{n}{dict(k)}: sonde {va}, node_exporter {vn}, sonde {vb}")
    check_eq(backwards, [], f"sonde counters going backwards between scrapes (of {counters})")
    check_eq(outside, [], "node_exporter counters not between two sonde scrapes")

    print("== promtool", flush=True)
    # node_exporter's own names break promtool's naming lint (camelCase
    # meminfo/netstat/sockstat fields, *_bits): sonde may inherit exactly
    # those findings for the same names, and nothing else.
    rc_s, found_s = lint(text_b)
    _, found_n = lint(text_n)
    check_eq(sorted(found_s - found_n), [], "promtool findings on sonde's page that node_exporter's lacks")
    check(rc_s in (0, 3), f"promtool parsed sonde's page (exit {rc_s})")

    print("== scrape cost", flush=True)
    durs = []
    for _ in range(20):
        m = parse_metrics(agent.metrics_text())
        durs.append(sum(v for (name, _), v in m.items() if name == "sonde_host_collector_duration_seconds"))
    durs.sort()
    print(f"   host collectors, median of 20 scrapes: {durs[10] * 1e3:.3f} ms wall", flush=True)

    print("== --no-host-metrics", flush=True)
    plain = Agent("--no-host-metrics", print_spans=False, name="agent --no-host-metrics")
    text = plain.metrics_text()
    check_eq(sorted({n for n in node_families(families(text))}), [], "node_* families with --no-host-metrics")
    check_eq(lint(text), (0, set()), "promtool check metrics with --no-host-metrics")
    check_eq(plain.stop(), 0, "agent --no-host-metrics exit status")
    check_eq(agent.stop(), 0, "agent exit status")
    shutil.rmtree(tf_dir, ignore_errors=True)
    finish("test_node_exporter")


if __name__ == "__main__":
    main()
