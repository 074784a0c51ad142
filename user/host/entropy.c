/* entropy collector: the kernel's random pool, in bits. */
#include "host/collectors.h"

int host_entropy__collect(struct host_w *w)
{
	static int fd_avail = -1, fd_pool = -1;
	uint64_t avail, pool;
	int err;

	err = host_util__read_u64(&fd_avail, "/proc/sys/kernel/random/entropy_avail", &avail);
	if (!err)
		err = host_util__read_u64(&fd_pool, "/proc/sys/kernel/random/poolsize", &pool);
	if (err)
		return err;
	host_util__single(w, "node_entropy_available_bits", HOST_GAUGE,
			  "Bits of available entropy.", (double)avail);
	host_util__single(w, "node_entropy_pool_size_bits", HOST_GAUGE,
			  "Bits of entropy pool.", (double)pool);
	return 0;
}
