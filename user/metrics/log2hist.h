/* Prometheus form of the kernel's log2 latency slots (SONDE_HIST_SLOTS in
 * sonde.h): slot k becomes the bucket le = 2^k µs, the last slot +Inf, so
 * slot counts map one to one onto buckets and no precision is invented. */
#ifndef SONDE_LOG2HIST_H
#define SONDE_LOG2HIST_H

#include <stddef.h>

#include "sonde.h"

#define LOG2HIST_NBOUNDS (SONDE_HIST_SLOTS - 1)

/* LOG2HIST_NBOUNDS ascending bounds in seconds: 1e-6 * 2^k, k = 0.. */
const double *log2hist__bounds(void);

#endif
