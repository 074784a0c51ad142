/* time collector: wall clock, local time zone offset, and the available and
 * current clocksources of /sys/devices/system/clocksource/clocksource<N>. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "host/collectors.h"

#define MAX_CLOCKSOURCES 8

static void clocksources(struct host_w *w, int current)
{
	static int fds[2][MAX_CLOCKSOURCES] = { { -1, -1, -1, -1, -1, -1, -1, -1 },
						{ -1, -1, -1, -1, -1, -1, -1, -1 } };
	/* the live kernel registers its clocksource devices at boot (one,
	 * clocksource0): the first missing one stays missing, and is not
	 * looked up again every scrape */
	static int end[2] = { MAX_CLOCKSOURCES, MAX_CLOCKSOURCES };
	const char *name = current ? "node_time_clocksource_current_info"
				   : "node_time_clocksource_available_info";

	host_util__family(w, name, HOST_GAUGE,
			  current ? "Current clocksource read from '/sys/devices/system/clocksource'."
				  : "Available clocksources read from '/sys/devices/system/clocksource'.");
	/* Devices are numbered from 0; the first missing one ends the list. */
	for (int d = 0; d < (host_util__sysfs_live() ? end[current] : MAX_CLOCKSOURCES); d++) {
		char path[96], buf[512], dev[12], *f[16];
		int n;

		snprintf(path, sizeof(path), "/sys/devices/system/clocksource/clocksource%d/%s", d,
			 current ? "current_clocksource" : "available_clocksource");
		if (host_util__read(&fds[current][d], path, buf, sizeof(buf)) < 0) {
			if (host_util__sysfs_live() && fds[current][d] < 0 && d > 0)
				end[current] = d;
			break;
		}
		buf[strcspn(buf, "\n")] = '\0';
		snprintf(dev, sizeof(dev), "%d", d);
		n = host_util__fields(buf, f, 16);
		for (int i = 0; i < n; i++) {
			host_util__begin(w, name);
			host_util__label(w, "clocksource", f[i]);
			host_util__label(w, "device", dev);
			host_util__end(w, 1);
		}
	}
}

int host_time__collect(struct host_w *w)
{
	static int tz_ready;
	struct timespec ts;
	struct tm tm;

	if (!tz_ready++)
		tzset();
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	host_util__single(w, "node_time_seconds", HOST_GAUGE,
			  "System time in seconds since epoch (1970).",
			  (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
	host_util__family(w, "node_time_zone_offset_seconds", HOST_GAUGE,
			  "System time zone offset in seconds.");
	host_util__begin(w, "node_time_zone_offset_seconds");
	host_util__label(w, "time_zone", tm.tm_zone ? tm.tm_zone : "");
	host_util__end(w, (double)tm.tm_gmtoff);
	clocksources(w, 0);
	clocksources(w, 1);
	return 0;
}
