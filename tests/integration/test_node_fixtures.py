"""Integration: sonde's collectors for hardware this host lacks (RAID,
bonding, NICs with speed and carrier counters, ...) against the real
Prometheus node_exporter 1.5 (Debian's prometheus-node-exporter), both
reading the same /proc and /sys fixture trees through --path.procfs and
--path.sysfs. The trees in tests/fixtures/host/ are written from the
kernel's documented formats (md_seq_show for /proc/mdstat, the net-sysfs
and bonding ABI for /sys/class/net, /proc/net/arp, the thermal sysfs ABI,
hwmon's sysfs-interface with device links for the chip names, schedstat
version 15, the EDAC mc/csrow ABI, /sys/class/nvme, and the power_supply
class ABI of Documentation/ABI/testing/sysfs-class-power-supply: an ACPI
AC adapter and battery, a fuel gauge, a USB-C port and a mouse battery).

No agent is needed: build/sonde-hostdump renders sonde's node_* page from
the same user/host code the agent runs. For each fixture the covered
collectors' families must be identical: names, TYPE, HELP, every series'
labels and value. Each fixture also pins values worked out by hand from
the fixture text, so a mistake both exporters share still fails."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ROOT, check, check_eq, finish, free_port, http_get, spawn, wait_until  # noqa: E402

HOSTDUMP = os.path.join(ROOT, "build", "sonde-hostdump")
FIX = os.path.join(ROOT, "tests", "fixtures", "host")

# fixture dir, node_exporter collectors, family prefixes they own, pinned values
FIXTURES = [
    ("md", ["mdadm"], ("node_md_",), {
        ('node_md_disks', (('device', 'md1'), ('state', 'failed'))): 1.0,
        ('node_md_disks', (('device', 'md1'), ('state', 'active'))): 1.0,
        ('node_md_disks_required', (('device', 'md1'),)): 2.0,
        ('node_md_disks', (('device', 'md5'), ('state', 'spare'))): 1.0,
        ('node_md_disks', (('device', 'md7'), ('state', 'spare'))): 1.0,
        ('node_md_state', (('device', 'md2'), ('state', 'recovering'))): 1.0,
        ('node_md_state', (('device', 'md2'), ('state', 'active'))): 0.0,
        ('node_md_state', (('device', 'md6'), ('state', 'check'))): 1.0,
        ('node_md_state', (('device', 'md5'), ('state', 'inactive'))): 1.0,
        ('node_md_state', (('device', 'md7'), ('state', 'resync'))): 1.0,
        ('node_md_blocks_synced', (('device', 'md2'),)): 289664.0,
        ('node_md_blocks_synced', (('device', 'md8'),)): 0.0,
        ('node_md_blocks', (('device', 'md4'),)): 2093056.0,
        ('node_md_disks', (('device', 'md4'), ('state', 'active'))): 2.0,
    }),
    ("net", ["netclass", "bonding", "arp"], ("node_network_", "node_bonding_", "node_arp_"), {
        ('node_arp_entries', (('device', 'bond0'),)): 3.0,  # the incomplete entry counts too
        ('node_arp_entries', (('device', 'eno3'),)): 1.0,
        ('node_bonding_slaves', (('master', 'bond0'),)): 2.0,
        ('node_bonding_active', (('master', 'bond0'),)): 1.0,
        ('node_bonding_slaves', (('master', 'bond1'),)): 1.0,
        ('node_bonding_active', (('master', 'bond1'),)): 1.0,
        ('node_network_up', (('device', 'bond0'),)): 1.0,
        ('node_network_up', (('device', 'ens1f1'),)): 0.0,
        ('node_network_speed_bytes', (('device', 'ens1f0'),)): 1250000000.0,
        ('node_network_speed_bytes', (('device', 'ens1f1'),)): -125000.0,
        ('node_network_carrier_changes_total', (('device', 'ens1f1'),)): 7.0,
        ('node_network_flags', (('device', 'bond0'),)): 0x1403,
        ('node_network_flags', (('device', 'eno3'),)): 8.0,  # "010" is octal
        ('node_network_transmit_queue_length', (('device', 'eno3'),)): 500.0,
        ('node_network_mtu_bytes', (('device', 'wg0'),)): 1420.0,
        ('node_network_name_assign_type', (('device', 'lo'),)): 0.0,  # "garbage" reads as 0
        ('node_network_info', (('address', '52:54:00:aa:bb:01'), ('broadcast', 'ff:ff:ff:ff:ff:ff'),
                               ('device', 'bond0'), ('duplex', 'full'), ('ifalias', 'uplink'),
                               ('operstate', 'up'))): 1.0,
    }),
]
FIXTURES.append(("thermal", ["thermal_zone"], ("node_thermal_zone_", "node_cooling_device_"), {
    ('node_thermal_zone_temp', (('type', 'acpitz'), ('zone', '1'))): 27.8,
    ('node_thermal_zone_temp', (('type', 'iwlwifi_1'), ('zone', '10'))): -5.5,
    ('node_cooling_device_max_state', (('name', '1'), ('type', 'intel_powerclamp'))): 50.0,
    ('node_cooling_device_cur_state', (('name', '0'), ('type', 'Processor'))): 3.0,
}))
FIXTURES.append(("hwmon", ["hwmon"], ("node_hwmon_",), {
    ('node_hwmon_temp_celsius', (('chip', 'platform_coretemp_0'), ('sensor', 'temp1'))): 45.0,
    ('node_hwmon_temp_celsius', (('chip', 'pci0000:00_0000:00:18_3'), ('sensor', 'temp3'))): 36.0,
    ('node_hwmon_temp_celsius', (('chip', 'acpitz'), ('sensor', 'temp1'))): 27.8,
    ('node_hwmon_sensor_label', (('chip', 'platform_coretemp_0'), ('label', 'Package id 0'),
                                 ('sensor', 'temp1'))): 1.0,
    ('node_hwmon_chip_names', (('chip', 'platform_nct6775_656'), ('chip_name', 'nct6779'))): 1.0,
    ('node_hwmon_in_volts', (('chip', 'platform_nct6775_656'), ('sensor', 'in0'))): 1.072,
    ('node_hwmon_fan_rpm', (('chip', 'platform_nct6775_656'), ('sensor', 'fan1'))): 1205.0,
    ('node_hwmon_power_average_watt', (('chip', 'platform_nct6775_656'), ('sensor', 'power1'))): 15.0,
    ('node_hwmon_energy_joule_total', (('chip', 'platform_nct6775_656'), ('sensor', 'energy1'))): 123.456789,
    ('node_hwmon_humidity', (('chip', 'platform_nct6775_656'), ('sensor', 'humidity1'))): 0.045,
}))
FIXTURES.append(("sched", ["schedstat", "edac", "nvme"], ("node_schedstat_", "node_edac_", "node_nvme_"), {
    ('node_schedstat_running_seconds_total', (('cpu', '0'),)): 2052.837453139,
    ('node_schedstat_timeslices_total', (('cpu', '1'),)): 10537724.0,
    ('node_edac_csrow_correctable_errors_total', (('controller', '1'), ('csrow', 'unknown'))): 5.0,
    ('node_edac_uncorrectable_errors_total', (('controller', '0'),)): 1.0,
    ('node_nvme_info', (('device', 'nvme0'), ('firmware_revision', '2B2QEXM7'),
                        ('model', 'Samsung SSD 970 EVO Plus 1TB'), ('serial', 'S4EWNF0M123456'),
                        ('state', 'live'))): 1.0,
}))
FIXTURES.append(("power", ["powersupplyclass"], ("node_power_supply_",), {
    # µWh, µW, µV, µA, µAh → Wh, W, V, A, Ah; tenths of a degree → °C
    ('node_power_supply_energy_watthour', (('power_supply', 'BAT0'),)): 43.73,
    ('node_power_supply_power_watt', (('power_supply', 'BAT0'),)): 9.912,
    ('node_power_supply_voltage_volt', (('power_supply', 'bq27500-0'),)): 3.987,
    ('node_power_supply_current_ampere', (('power_supply', 'bq27500-0'),)): 0.45,
    ('node_power_supply_charge_counter', (('power_supply', 'bq27500-0'),)): -1.234567,
    ('node_power_supply_temp_celsius', (('power_supply', 'bq27500-0'),)): 28.5,
    ('node_power_supply_temp_ambient_celsius', (('power_supply', 'bq27500-0'),)): -4.5,
    ('node_power_supply_cyclecount', (('power_supply', 'BAT0'),)): 143.0,
    ('node_power_supply_time_to_full_seconds', (('power_supply', 'bq27500-0'),)): 3600.0,
    ('node_power_supply_online', (('power_supply', 'AC'),)): 1.0,
    # the info labels: every non-empty string attribute, trimmed (ACPI pads
    # the serial number with blanks)
    ('node_power_supply_info', (('capacity_level', 'Normal'), ('manufacturer', 'SMP'),
                                ('model_name', '5B10W13975'), ('power_supply', 'BAT0'),
                                ('serial_number', '4711'), ('status', 'Discharging'),
                                ('technology', 'Li-poly'), ('type', 'Battery'))): 1.0,
    ('node_power_supply_info', (('power_supply', 'AC'), ('type', 'Mains'))): 1.0,
    ('node_power_supply_info', (('power_supply', 'ucsi-source-psy-USBC000:001'), ('scope', 'Unknown'),
                                ('type', 'USB'), ('usb_type', 'C PD [PD_PPS]'))): 1.0,
}))
ABSENT_HW = {"hwmon": [('node_hwmon_temp_celsius', (('chip', 'platform_nct6775_656'), ('sensor', 'temp8')))]}
# series that must be absent (the attribute file is missing or unparsable)
ABSENT = {
    # current_avg, time_to_empty_avg, alarm and the charge_control_*
    # thresholds are read or listed but have no family
    "power": [('node_power_supply_current_avg', (('power_supply', 'bq27500-0'),)),
              ('node_power_supply_capacity', (('power_supply', 'AC'),))],
    "net": [('node_network_carrier', (('device', 'wg0'),)),
            ('node_network_speed_bytes', (('device', 'lo'),))],
    **ABSENT_HW,  # temp8_input is "garbage"
}

_sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_label = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


# netdev reads the host's own interfaces over netlink, not the fixture
NETDEV = re.compile(r"node_network_(receive|transmit)_[a-z]+_total$")


def page(text, prefixes):
    """{family: [type, help, {(name, labels): value}]} for the prefixes"""
    fams, cur = {}, None
    for line in text.splitlines():
        if line.startswith(("# HELP ", "# TYPE ")):
            name, _, rest = line[7:].partition(" ")
            keep = name.startswith(prefixes) and not NETDEV.match(name)
            cur = fams.setdefault(name, [None, None, {}]) if keep else None
            if cur is not None:
                cur[0 if line[2] == "T" else 1] = rest
        elif line and not line.startswith("#") and cur is not None:
            m = _sample.match(line)
            labels = tuple(sorted((k, v.replace('\\"', '"').replace("\\\\", "\\"))
                                  for k, v in _label.findall(m.group(2) or "")))
            cur[2][(m.group(1), labels)] = float(m.group(3))
    return fams


def main():
    ne_bin = shutil.which("prometheus-node-exporter")
    if not ne_bin:
        raise SystemExit("FAIL: prometheus-node-exporter not installed (scripts/install-deps.sh)")
    work = tempfile.mkdtemp(prefix="sonde-fixtures-")
    for name, collectors, prefixes, pinned in FIXTURES:
        print(f"== fixture {name}: {', '.join(collectors)}", flush=True)
        root = os.path.join(FIX, name)
        paths = [f"--path.procfs={root}/proc", f"--path.sysfs={root}/sys"]
        port = free_port()
        log = open(os.path.join(work, f"ne-{name}.log"), "w")
        ne = spawn([ne_bin, f"--web.listen-address=127.0.0.1:{port}", "--collector.disable-defaults",
                    *[f"--collector.{c}" for c in collectors], *paths],
                   stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/metrics"
        wait_until(f"node_exporter on fixture {name}", lambda: http_get(url)[0] == 200)
        theirs = page(http_get(url)[1].decode(), prefixes)
        r = subprocess.run([HOSTDUMP, *paths], capture_output=True, text=True, timeout=30)
        check_eq(r.returncode, 0, f"{name}: sonde-hostdump exit status")
        mine = page(r.stdout, prefixes)
        ne.terminate()
        ne.wait(10)
        check(theirs, f"{name}: node_exporter exports the fixture's families")
        check_eq(sorted(mine), sorted(theirs), f"{name}: family names")
        for fam in sorted(set(mine) & set(theirs)):
            check_eq(mine[fam][:2], theirs[fam][:2], f"{name}: {fam} TYPE and HELP")
            check_eq(mine[fam][2], theirs[fam][2], f"{name}: {fam} series and values")
        flat = {k: v for f in mine.values() for k, v in f[2].items()}
        for key, want in pinned.items():
            check_eq(flat.get(key), want, f"{name}: {key[0]}{dict(key[1])} from the fixture text")
        for key in ABSENT.get(name, []):
            check(key not in flat, f"{name}: {key[0]}{dict(key[1])} absent")
        ok = {m.group(1): m.group(2) for m in re.finditer(
            r'sonde_host_collector_success\{collector="([a-z_]+)"\} (\S+)', r.stdout)}
        for c in collectors:
            check_eq(ok.get(c), "1", f"{name}: sonde_host_collector_success{{collector={c}}}")
    rootfs_case(ne_bin, work)
    netlink_case(work)
    shutil.rmtree(work, ignore_errors=True)
    finish("test_node_fixtures")


def netlink_case(work):
    """netclass on the live /sys takes 16 of its 22 attributes per interface
    from the RTM_GETLINK dump netdev makes anyway; through --path.sysfs (a
    symlink to /sys here) it reads every one from sysfs, as node_exporter
    does. Both must give the same page on this host's interfaces."""
    print("== netclass: netlink on the live /sys, the same as reading sysfs", flush=True)
    link = os.path.join(work, "sys")
    os.symlink("/sys", link)
    prefixes = ("node_network_",)
    for attempt in range(3):  # a carrier change between the two runs is retried
        live = subprocess.run([HOSTDUMP], capture_output=True, text=True, timeout=30)
        via = subprocess.run([HOSTDUMP, f"--path.sysfs={link}"], capture_output=True, text=True, timeout=30)
        mine, theirs = page(live.stdout, prefixes), page(via.stdout, prefixes)
        if mine == theirs:
            break
    check(mine, "netclass: node_network_* families on this host")
    check_eq(sorted(mine), sorted(theirs), "netclass: family names, netlink vs sysfs")
    for fam in sorted(set(mine) & set(theirs)):
        check_eq(mine[fam], theirs[fam], f"netclass: {fam} netlink vs sysfs")


# node_exporter 1.5's upstream filesystem exclusions (Debian's build differs)
FS_FLAGS = ["--collector.filesystem.mount-points-exclude="
            "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"]
FS_STABLE = ("node_filesystem_size_bytes", "node_filesystem_files", "node_filesystem_readonly",
             "node_filesystem_device_error")


def rootfs_case(ne_bin, work):
    """--path.rootfs as a DaemonSet uses it: this host's / bind-mounted at
    <dir>/root. Mount points under it lose the prefix in their labels and
    statfs() goes through it; os-release is read from it."""
    print("== --path.rootfs: / bind-mounted elsewhere", flush=True)
    root = os.path.join(work, "root")
    os.mkdir(root)
    r = subprocess.run(["mount", "--bind", "/", root], capture_output=True, text=True, timeout=30)
    check_eq(r.returncode, 0, f"mount --bind / {root} ({r.stderr.strip()})")
    if r.returncode:
        return
    try:
        port = free_port()
        log = open(os.path.join(work, "ne-rootfs.log"), "w")
        ne = spawn([ne_bin, f"--web.listen-address=127.0.0.1:{port}", "--collector.disable-defaults",
                    "--collector.filesystem", "--collector.os", f"--path.rootfs={root}", *FS_FLAGS],
                   stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/metrics"
        wait_until("node_exporter with --path.rootfs", lambda: http_get(url)[0] == 200)
        theirs = page(http_get(url)[1].decode(), ("node_filesystem_", "node_os_"))
        r = subprocess.run([HOSTDUMP, f"--path.rootfs={root}"], capture_output=True, text=True, timeout=30)
        mine = page(r.stdout, ("node_filesystem_", "node_os_"))
        ne.terminate()
        ne.wait(10)
        check_eq(sorted(mine), sorted(theirs), "rootfs: family names")
        for fam in sorted(set(mine) & set(theirs)):
            check_eq(mine[fam][:2], theirs[fam][:2], f"rootfs: {fam} TYPE and HELP")
            check_eq(sorted(mine[fam][2]), sorted(theirs[fam][2]), f"rootfs: {fam} label sets")
            if fam in FS_STABLE or fam.startswith("node_os_"):
                check_eq(mine[fam][2], theirs[fam][2], f"rootfs: {fam} values")
        mps = {dict(k[1])["mountpoint"] for k in mine.get("node_filesystem_size_bytes", [0, 0, {}])[2]}
        check("/" in mps, "rootfs: the bind mount of / is reported as mountpoint \"/\"")
        check(not any(m.startswith(root) for m in mps), f"rootfs: no mountpoint label keeps the prefix {root}")
        errs = {k: v for k, v in mine.get("node_filesystem_device_error", [0, 0, {}])[2].items()
                if dict(k[1])["mountpoint"] == "/"}
        check_eq(set(errs.values()), {0.0}, "rootfs: statfs of / through the prefix works")
    finally:
        subprocess.run(["umount", root], timeout=30)


if __name__ == "__main__":
    main()
