/* lookup-and-delete makes the read and the reset one step (Linux 5.14+ for
 * hash maps); older kernels fall back to lookup then delete, which can lose
 * what is added between the two. */
#include <bpf/bpf.h>

#include "probe/mapdrain.h"

size_t mapdrain__u32(int fd, void *value_buf, mapdrain_fn fn, void *arg)
{
	uint32_t keys[MAPDRAIN_BATCH], key, next;
	size_t n = 0, moved = 0;
	int err;

	/* Keys first: deleting while walking would restart the walk. */
	err = bpf_map_get_next_key(fd, NULL, &next);
	while (!err && n < MAPDRAIN_BATCH) {
		keys[n++] = next;
		key = next;
		err = bpf_map_get_next_key(fd, &key, &next);
	}
	for (size_t i = 0; i < n; i++) {
		if (bpf_map_lookup_and_delete_elem(fd, &keys[i], value_buf) != 0) {
			if (bpf_map_lookup_elem(fd, &keys[i], value_buf) != 0)
				continue;
			bpf_map_delete_elem(fd, &keys[i]);
		}
		fn(arg, keys[i], value_buf);
		moved++;
	}
	return moved;
}
