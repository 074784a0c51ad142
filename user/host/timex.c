/* timex collector: the kernel clock discipline from adjtimex(2), as
 * node_exporter 1.5 reports it (node_timex_*). sync_status is 0 when the
 * call returns TIME_ERROR, i.e. the clock is not synchronised. */
#include <errno.h>
#include <sys/timex.h>

#include "host/collectors.h"

#define PPM16 (1000000.0 * 65536.0)	/* freq, ppsfreq, stabil: ppm with 16-bit fraction */

int host_timex__collect(struct host_w *w)
{
	struct timex t = { .modes = 0 };	/* 0: read only */
	int state = adjtimex(&t);
	/* offset and jitter are ns with STA_NANO, else us */
	double div = (t.status & STA_NANO) ? 1e9 : 1e6;
	static const struct {
		const char *name, *help;
		enum host_type type;
	} f[] = {
		{ "node_timex_estimated_error_seconds", "Estimated error in seconds.", HOST_GAUGE },
		{ "node_timex_frequency_adjustment_ratio", "Local clock frequency adjustment.", HOST_GAUGE },
		{ "node_timex_loop_time_constant", "Phase-locked loop time constant.", HOST_GAUGE },
		{ "node_timex_maxerror_seconds", "Maximum error in seconds.", HOST_GAUGE },
		{ "node_timex_offset_seconds", "Time offset in between local system and reference clock.",
		  HOST_GAUGE },
		{ "node_timex_pps_calibration_total", "Pulse per second count of calibration intervals.",
		  HOST_COUNTER },
		{ "node_timex_pps_error_total", "Pulse per second count of calibration errors.",
		  HOST_COUNTER },
		{ "node_timex_pps_frequency_hertz", "Pulse per second frequency.", HOST_GAUGE },
		{ "node_timex_pps_jitter_seconds", "Pulse per second jitter.", HOST_GAUGE },
		{ "node_timex_pps_jitter_total", "Pulse per second count of jitter limit exceeded events.",
		  HOST_COUNTER },
		{ "node_timex_pps_shift_seconds", "Pulse per second interval duration.", HOST_GAUGE },
		{ "node_timex_pps_stability_exceeded_total",
		  "Pulse per second count of stability limit exceeded events.", HOST_COUNTER },
		{ "node_timex_pps_stability_hertz",
		  "Pulse per second stability, average of recent frequency changes.", HOST_GAUGE },
		{ "node_timex_status", "Value of the status array bits.", HOST_GAUGE },
		{ "node_timex_sync_status", "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
		  HOST_GAUGE },
		{ "node_timex_tai_offset_seconds", "International Atomic Time (TAI) offset.", HOST_GAUGE },
		{ "node_timex_tick_seconds", "Seconds between clock ticks.", HOST_GAUGE },
	};
	double v[sizeof(f) / sizeof(f[0])];
	size_t i = 0;

	if (state < 0)
		return -errno;
	v[i++] = (double)t.esterror / 1e6;
	v[i++] = 1 + (double)t.freq / PPM16;
	v[i++] = (double)t.constant;
	v[i++] = (double)t.maxerror / 1e6;
	v[i++] = (double)t.offset / div;
	v[i++] = (double)t.calcnt;
	v[i++] = (double)t.errcnt;
	v[i++] = (double)t.ppsfreq / PPM16;
	v[i++] = (double)t.jitter / div;
	v[i++] = (double)t.jitcnt;
	v[i++] = (double)t.shift;
	v[i++] = (double)t.stbcnt;
	v[i++] = (double)t.stabil / PPM16;
	v[i++] = (double)t.status;
	v[i++] = state == TIME_ERROR ? 0 : 1;
	v[i++] = (double)t.tai;
	v[i++] = (double)t.tick / 1e6;
	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		host_util__single(w, f[i].name, f[i].type, f[i].help, v[i]);
	return 0;
}
