/* The host collectors, one per file; host.c runs them in this order.
 * Each writes its families and returns 0, or a negative errno when its
 * source is unavailable (host.c then drops whatever it wrote). */
#ifndef SONDE_HOST_COLLECTORS_H
#define SONDE_HOST_COLLECTORS_H

#include "host/util.h"

int host_arp__collect(struct host_w *w);
int host_bonding__collect(struct host_w *w);
int host_conntrack__collect(struct host_w *w);
int host_cpu__collect(struct host_w *w);
int host_diskstats__collect(struct host_w *w);
int host_edac__collect(struct host_w *w);
int host_entropy__collect(struct host_w *w);
int host_filefd__collect(struct host_w *w);
int host_filesystem__collect(struct host_w *w);
int host_hwmon__collect(struct host_w *w);
int host_loadavg__collect(struct host_w *w);
int host_mdadm__collect(struct host_w *w);
int host_meminfo__collect(struct host_w *w);
int host_netclass__collect(struct host_w *w);
int host_netdev__collect(struct host_w *w);
int host_netstat__collect(struct host_w *w);
int host_nvme__collect(struct host_w *w);
int host_os__collect(struct host_w *w);
int host_powersupplyclass__collect(struct host_w *w);
int host_pressure__collect(struct host_w *w);
int host_schedstat__collect(struct host_w *w);
int host_sockstat__collect(struct host_w *w);
int host_softnet__collect(struct host_w *w);
int host_stat__collect(struct host_w *w);
int host_textfile__collect(struct host_w *w);
int host_thermal_zone__collect(struct host_w *w);
int host_time__collect(struct host_w *w);
int host_timex__collect(struct host_w *w);
int host_uname__collect(struct host_w *w);
int host_vmstat__collect(struct host_w *w);

#endif
