/* Unit tests of user/host/ under the sanitizers: the textfile collector on
 * a directory of written files and on 3000 random mutations of them (the
 * page must stay valid, never a crash), its Go-compatible number handling,
 * the --path.* mapping, and mdadm, bonding, netclass, hwmon, thermal_zone
 * and powersupplyclass on the fixture trees. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "host/host.h"
#include "host/textfile.h"
#include "host/util.h"

static char dir[64];

static void put(const char *name, const char *text, size_t n)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, text, n) != (ssize_t)n)
		perror(path);
	close(fd);
}

static char *page(void)
{
	static struct metrics_buf b;

	b.len = 0;
	if (b.data)
		b.data[0] = '\0';
	CHECK_EQ_INT(host__collect(&b), 0);
	return b.data ? b.data : (char *)"";
}

static int has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)); p += n)
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
			return 1;
	return 0;
}

/* Every line is a comment or name{labels} value, labels quoted and closed. */
static int valid_page(const char *t)
{
	for (const char *l = t; *l; ) {
		const char *e = strchr(l, '\n'), *p = l;

		if (!e)
			return 0;
		if (*p != '#') {
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || *p == ':'))
				return 0;
			while (p < e && *p != '{' && *p != ' ')
				p++;
			if (p < e && *p == '{') {
				int inq = 0;

				for (p++; p < e && (inq || *p != '}'); p++) {
					if (*p == '\\' && inq)
						p++;
					else if (*p == '"')
						inq = !inq;
				}
				if (p >= e || inq)
					return 0;
				p++;
			}
			if (p >= e || *p != ' ' || p + 1 >= e)
				return 0;
		}
		l = e + 1;
	}
	return 1;
}

static const char seed[] =
	"# HELP a_total Jobs.\n# TYPE a_total counter\na_total{job=\"x\",k=\"v\\\\\\\"\\n\"} 3\n"
	"# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.7\nh_count 2\n"
	"# TYPE s summary\ns{quantile=\"0.9\"} 1\ns_sum 2\ns_count 3\nplain -1.5e-3\n";

static void test_textfile(void)
{
	struct host_opts o = { .textfile_dir = dir };
	char *t;

	CHECK_EQ_INT(host__configure(&o), 0);
	put("a.prom", seed, sizeof(seed) - 1);
	put("b.prom", "broken line\n", 12);
	put("c.prom", "# TYPE a_total gauge\na_total{job=\"y\"} 1\n", 40);
	t = page();
	CHECK(has_line(t, "node_textfile_scrape_error 1"));
	CHECK(has_line(t, "a_total{job=\"x\",k=\"v\\\\\\\"\\n\"} 3"));
	CHECK(!strstr(t, "a_total{job=\"y\"}"));	/* TYPE differs from a.prom's */
	CHECK(has_line(t, "# TYPE h histogram"));
	CHECK(has_line(t, "h_bucket{le=\"0.5\"} 1"));
	CHECK(has_line(t, "h_bucket{le=\"+Inf\"} 2"));
	CHECK(has_line(t, "s{quantile=\"0.9\"} 1"));
	{
		char want[160];

		snprintf(want, sizeof(want), "# HELP plain Metric read from %s/a.prom", dir);
		CHECK(has_line(t, want));
	}
	CHECK(has_line(t, "plain -0.0015"));
	CHECK(valid_page(t));
	unlink(strcat(strcpy((char[128]){0}, dir), "/b.prom"));
	t = page();
	CHECK(has_line(t, "node_textfile_scrape_error 0"));

	/* mutations: flip, insert, delete, truncate; never a crash or a
	 * broken page, and the error metric always there */
	unsigned long long x = 0x9e3779b97f4a7c15ull;
	int bad = 0;

	for (int i = 0; i < 3000; i++) {
		char buf[sizeof(seed) + 64];
		size_t n = sizeof(seed) - 1;

		memcpy(buf, seed, n);
		for (int k = 0; k < 1 + i % 4; k++) {
			size_t at;

			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			at = (size_t)(x >> 8) % n;
			switch (x % 4) {
			case 0: buf[at] = (char)(x >> 32); break;
			case 1: if (n + 1 < sizeof(buf)) { memmove(buf + at + 1, buf + at, n - at); buf[at] = "{}\"\\ \n#=,"[(x >> 40) % 9]; n++; } break;
			case 2: memmove(buf + at, buf + at + 1, n - at - 1); n--; break;
			default: n = at + 1; break;
			}
		}
		put("a.prom", buf, n);
		t = page();
		if (!valid_page(t) || (!has_line(t, "node_textfile_scrape_error 0") &&
				       !has_line(t, "node_textfile_scrape_error 1"))) {
			if (bad++ < 3)
				fprintf(stderr, "mutation %d gave a broken page\n", i);
		}
	}
	CHECK_EQ_INT(bad, 0);
	o.textfile_dir = NULL;
	host__configure(&o);
}

static void test_numbers(void)
{
	char s[40];
	double v;

	CHECK_EQ_INT(textfile__parse_float("1.5", 3, &v), 0);
	CHECK(v == 1.5);
	CHECK_EQ_INT(textfile__parse_float("+Inf", 4, &v), 0);
	CHECK(isinf(v) && v > 0);
	CHECK_EQ_INT(textfile__parse_float("nan", 3, &v), 0);
	CHECK(isnan(v));
	CHECK_EQ_INT(textfile__parse_float("-NaN", 4, &v), -EINVAL);
	CHECK_EQ_INT(textfile__parse_float("0x10", 4, &v), -EINVAL);
	CHECK_EQ_INT(textfile__parse_float("1_0", 3, &v), -EINVAL);
	CHECK_EQ_INT(textfile__parse_float("1e400", 5, &v), -ERANGE);
	CHECK_EQ_INT(textfile__parse_float("infin", 5, &v), -EINVAL);
	CHECK_EQ_INT(textfile__parse_float("", 0, &v), -EINVAL);
	textfile__format_float(1e6, s, sizeof(s));
	CHECK_EQ_STR(s, "1e+06");
	textfile__format_float(123456, s, sizeof(s));
	CHECK_EQ_STR(s, "123456");
	textfile__format_float(0.25, s, sizeof(s));
	CHECK_EQ_STR(s, "0.25");
	textfile__format_float(1e-5, s, sizeof(s));
	CHECK_EQ_STR(s, "1e-05");
	textfile__format_float(0.0001, s, sizeof(s));
	CHECK_EQ_STR(s, "0.0001");
	textfile__format_float(-2.5e21, s, sizeof(s));
	CHECK_EQ_STR(s, "-2.5e+21");
	textfile__format_float(0.1 + 0.2, s, sizeof(s));
	CHECK_EQ_STR(s, "0.30000000000000004");
}

/* host_util__end_ns prints what host_util__end prints for ns / 1e9. */
static void test_end_ns(void)
{
	struct metrics_buf a = { 0 }, b = { 0 };
	struct host_w wa = { .buf = &a }, wb = { .buf = &b };
	uint64_t seed = 42;
	int bad = 0;

	for (int i = 0; i < 200000; i++) {
		uint64_t ns;

		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		/* every magnitude from 1 ns to 10^16 ns, trailing zeros too */
		ns = (seed >> 11) % 10000000000000000ULL;
		ns /= (uint64_t)pow(10, (double)((seed >> 3) % 17));
		if (i < 40)
			ns = (uint64_t)pow(10, i % 17) * (uint64_t)(1 + i / 17);
		a.len = b.len = 0;
		host_util__end_ns(&wa, ns);
		host_util__end(&wb, (double)ns / 1e9);
		if (a.len != b.len || memcmp(a.data, b.data, a.len)) {
			if (bad++ < 5)
				fprintf(stderr, "end_ns(%llu): %.*s vs %.*s", (unsigned long long)ns,
					(int)a.len, a.data, (int)b.len, b.data);
		}
	}
	CHECK_EQ_INT(bad, 0);
	a.len = 0;
	host_util__end_ns(&wa, 12345);
	CHECK(a.len == 12 && !memcmp(a.data, " 1.2345e-05\n", 12));
	a.len = 0;
	host_util__end_ns(&wa, 1500000000);
	CHECK(a.len == 5 && !memcmp(a.data, " 1.5\n", 5));
	metrics_buf__free(&a);
	metrics_buf__free(&b);
}

static void test_paths(void)
{
	struct host_opts o = { .procfs = "/host/proc/", .sysfs = "/host/sys", .rootfs = "/host/root" };
	char out[256];

	CHECK_EQ_INT(host__configure(&o), 0);
	CHECK_EQ_STR(host_util__path("/proc/stat", out, sizeof(out)), "/host/proc/stat");
	CHECK_EQ_STR(host_util__path("/sys/class/net", out, sizeof(out)), "/host/sys/class/net");
	CHECK_EQ_STR(host_util__path("/etc/os-release", out, sizeof(out)), "/host/root/etc/os-release");
	CHECK_EQ_STR(host_util__path("/processes", out, sizeof(out)), "/host/root/processes");
	CHECK_EQ_STR(host_util__strip_rootfs("/host/root/var"), "/var");
	CHECK_EQ_STR(host_util__strip_rootfs("/host/root"), "/");
	CHECK_EQ_STR(host_util__strip_rootfs("/host/rootfs"), "/host/rootfs");
	CHECK_EQ_STR(host_util__strip_rootfs("/var"), "/var");
	o = (struct host_opts){ .procfs = "/proc", .rootfs = "/" };
	CHECK_EQ_INT(host__configure(&o), 0);
	CHECK_EQ_STR(host_util__path("/proc/stat", out, sizeof(out)), "/proc/stat");
	CHECK_EQ_STR(host_util__path("/etc/os-release", out, sizeof(out)), "/etc/os-release");
	char big[300];

	memset(big, 'a', sizeof(big) - 1);
	big[0] = '/';
	big[sizeof(big) - 1] = '\0';
	o.procfs = big;
	CHECK_EQ_INT(host__configure(&o), -ENAMETOOLONG);
}

static void test_mdadm_fixture(void)
{
	struct host_opts o = { .procfs = "tests/fixtures/host/md/proc", .sysfs = "tests/fixtures/host/net/sys" };
	char *t;

	CHECK_EQ_INT(host__configure(&o), 0);
	t = page();
	CHECK(has_line(t, "node_md_disks{device=\"md1\",state=\"failed\"} 1"));
	CHECK(has_line(t, "node_md_state{device=\"md2\",state=\"recovering\"} 1"));
	CHECK(has_line(t, "node_md_blocks_synced{device=\"md2\"} 289664"));
	CHECK(has_line(t, "node_md_disks_required{device=\"md5\"} 0"));
	CHECK(has_line(t, "node_bonding_active{master=\"bond0\"} 1"));
	CHECK(has_line(t, "node_network_speed_bytes{device=\"ens1f1\"} -125000"));
	CHECK(has_line(t, "sonde_host_collector_success{collector=\"mdadm\"} 1"));
	CHECK(valid_page(t));
	o = (struct host_opts){ .sysfs = "tests/fixtures/host/hwmon/sys" };
	CHECK_EQ_INT(host__configure(&o), 0);
	t = page();
	CHECK(has_line(t, "node_hwmon_temp_celsius{chip=\"platform_coretemp_0\",sensor=\"temp1\"} 45"));
	CHECK(has_line(t, "node_hwmon_sensor_label{chip=\"platform_coretemp_0\",label=\"Package id 0\",sensor=\"temp1\"} 1"));
	CHECK(has_line(t, "node_hwmon_chip_names{chip=\"acpitz\",chip_name=\"acpitz\"} 1"));
	CHECK(has_line(t, "sonde_host_collector_success{collector=\"hwmon\"} 1"));
	CHECK(valid_page(t));
	o = (struct host_opts){ .sysfs = "tests/fixtures/host/thermal/sys" };
	CHECK_EQ_INT(host__configure(&o), 0);
	t = page();
	CHECK(has_line(t, "node_thermal_zone_temp{type=\"acpitz\",zone=\"1\"} 27.8"));
	CHECK(has_line(t, "node_cooling_device_max_state{name=\"0\",type=\"Processor\"} 10"));
	o = (struct host_opts){ 0 };
	host__configure(&o);
}

/* Go's strconv.ParseInt(s, 0, 64), which procfs applies to numeric
 * power_supply attributes. */
static void test_go_int(void)
{
	static const struct {
		const char *s;
		int ok;
		int64_t v;
	} cases[] = {
		{ "87", 1, 87 }, { "-1234567", 1, -1234567 }, { "+5", 1, 5 }, { "010", 1, 8 },
		{ "0x1f", 1, 31 }, { "0X1F", 1, 31 }, { "0o17", 1, 15 }, { "0b101", 1, 5 },
		{ "1_000", 1, 1000 }, { "0x_1f", 1, 31 }, { "0", 1, 0 }, { "-0", 1, 0 },
		{ "9223372036854775807", 1, INT64_MAX }, { "-9223372036854775808", 1, INT64_MIN },
		{ "9223372036854775808", 0, 0 }, { "18446744073709551616", 0, 0 },
		{ "08", 0, 0 }, { "0x", 0, 0 }, { "", 0, 0 }, { "+", 0, 0 }, { "_1", 0, 0 },
		{ "1_", 0, 0 }, { "1__0", 0, 0 }, { " 5", 0, 0 }, { "5 ", 0, 0 }, { "N/A", 0, 0 },
		{ "1.5", 0, 0 }, { "0b2", 0, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t v = 0;
		int rc = host_util__parse_go_int(cases[i].s, &v);

		if ((rc == 0) != cases[i].ok || (cases[i].ok && v != cases[i].v)) {
			fprintf(stderr, "parse_go_int(\"%s\") = %d, %lld\n", cases[i].s, rc, (long long)v);
			CHECK(0);
		}
	}
}

/* powersupplyclass on tests/fixtures/host/power (written from the kernel's
 * sysfs-class-power-supply ABI), then a supply whose numeric attribute
 * does not parse: the whole collector fails, as procfs fails the class. */
static void test_power_supply(void)
{
	struct host_opts o = { .sysfs = "tests/fixtures/host/power/sys" };
	char path[256], *t;

	CHECK_EQ_INT(host__configure(&o), 0);
	t = page();
	CHECK(has_line(t, "node_power_supply_online{power_supply=\"AC\"} 1"));
	CHECK(has_line(t, "node_power_supply_capacity{power_supply=\"BAT0\"} 87"));
	CHECK(has_line(t, "node_power_supply_energy_watthour{power_supply=\"BAT0\"} 43.73"));
	CHECK(has_line(t, "node_power_supply_power_watt{power_supply=\"BAT0\"} 9.912"));
	CHECK(has_line(t, "node_power_supply_cyclecount{power_supply=\"BAT0\"} 143"));
	CHECK(has_line(t, "node_power_supply_charge_counter{power_supply=\"bq27500-0\"} -1.234567"));
	CHECK(has_line(t, "node_power_supply_temp_celsius{power_supply=\"bq27500-0\"} 28.5"));
	CHECK(has_line(t, "node_power_supply_temp_ambient_celsius{power_supply=\"bq27500-0\"} -4.5"));
	CHECK(has_line(t, "node_power_supply_voltage_max{power_supply=\"ucsi-source-psy-USBC000:001\"} 20"));
	CHECK(has_line(t, "node_power_supply_info{power_supply=\"AC\",type=\"Mains\"} 1"));
	CHECK(has_line(t, "node_power_supply_info{capacity_level=\"Normal\",manufacturer=\"SMP\","
			  "model_name=\"5B10W13975\",power_supply=\"BAT0\",serial_number=\"4711\","
			  "status=\"Discharging\",technology=\"Li-poly\",type=\"Battery\"} 1"));
	CHECK(has_line(t, "node_power_supply_info{power_supply=\"ucsi-source-psy-USBC000:001\","
			  "scope=\"Unknown\",type=\"USB\",usb_type=\"C PD [PD_PPS]\"} 1"));
	CHECK(!strstr(t, "node_power_supply_current_avg"));	/* read, no family */
	CHECK(!strstr(t, "node_power_supply_alarm"));
	CHECK(!strstr(t, "node_power_supply_capacity{power_supply=\"AC\"}"));
	CHECK(has_line(t, "sonde_host_collector_success{collector=\"powersupplyclass\"} 1"));
	CHECK(valid_page(t));

	/* the same tree shape, one bad number */
	snprintf(path, sizeof(path), "mkdir -p %s/sys/class/power_supply/BAT1", dir);
	CHECK_EQ_INT(system(path), 0);
	put("sys/class/power_supply/BAT1/type", "Battery\n", 8);
	put("sys/class/power_supply/BAT1/capacity", " 0x1_f\n", 7);
	put("sys/class/power_supply/BAT1/cycle_count", "010\n", 4);
	snprintf(path, sizeof(path), "%s/sys", dir);
	o = (struct host_opts){ .sysfs = path };
	CHECK_EQ_INT(host__configure(&o), 0);
	t = page();
	CHECK(has_line(t, "node_power_supply_capacity{power_supply=\"BAT1\"} 31"));
	CHECK(has_line(t, "node_power_supply_cyclecount{power_supply=\"BAT1\"} 8"));
	put("sys/class/power_supply/BAT1/capacity", "N/A\n", 4);
	t = page();
	CHECK(!strstr(t, "node_power_supply_"));
	CHECK(has_line(t, "sonde_host_collector_success{collector=\"powersupplyclass\"} 0"));
	CHECK(valid_page(t));
	o = (struct host_opts){ 0 };
	host__configure(&o);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/sonde-test-host-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	test_numbers();
	test_end_ns();
	test_paths();
	test_textfile();
	test_mdadm_fixture();
	test_go_int();
	test_power_supply();
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd))
			return 1;
	}
	return check_summary("test_host");
}
