/* Bucket bounds for the kernel's log2 latency histograms. */
#include "metrics/log2hist.h"

const double *log2hist__bounds(void)
{
	static double bounds[LOG2HIST_NBOUNDS];

	if (bounds[0] == 0)
		for (int k = 0; k < LOG2HIST_NBOUNDS; k++)
			bounds[k] = 1e-6 * (double)(1ULL << k);
	return bounds;
}
