/* Benchmark floor: attaches floor.bpf.c (count-only programs on the same
 * syscall tracepoints as sonde) until SIGINT/SIGTERM, then prints the count. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "floor.skel.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(void)
{
	struct floor_bpf *f = floor_bpf__open_and_load();
	int ncpu = libbpf_num_possible_cpus();
	unsigned long long sum = 0;
	__u32 zero = 0;

	if (!f || ncpu <= 0 || floor_bpf__attach(f)) {
		fprintf(stderr, "sonde-floor: cannot load/attach (root? tracefs mounted?)\n");
		floor_bpf__destroy(f);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	fprintf(stderr, "sonde-floor: attached\n");
	while (!stop)
		pause();
	{
		__u64 vals[ncpu];

		if (bpf_map_lookup_elem(bpf_map__fd(f->maps.hits), &zero, vals) == 0)
			for (int i = 0; i < ncpu; i++)
				sum += vals[i];
	}
	printf("floor_hits %llu\n", sum);
	floor_bpf__destroy(f);
	return 0;
}
