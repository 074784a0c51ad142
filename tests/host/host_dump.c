/* sonde-hostdump: the node_* part of sonde's /metrics page without the
 * agent (no BPF, no lock), for fixture trees and per-collector cost.
 *   sonde-hostdump [--path.procfs DIR] [--path.sysfs DIR] [--path.rootfs DIR]
 *                  [--path.udev.data DIR] [--collector.textfile.directory DIR]
 *                  [--repeat N] [--pages N]
 * prints one page; with --repeat N it renders N pages and prints, per
 * collector, the mean CPU time of one run (tab-separated, microseconds);
 * with --pages N it renders N pages and prints each (what the collectors'
 * caches give from the second scrape on). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/host.h"

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "path.procfs", required_argument, NULL, 'p' },
		{ "path.sysfs", required_argument, NULL, 's' },
		{ "path.rootfs", required_argument, NULL, 'r' },
		{ "path.udev.data", required_argument, NULL, 'u' },
		{ "collector.textfile.directory", required_argument, NULL, 't' },
		{ "repeat", required_argument, NULL, 'n' },
		{ "pages", required_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	struct host_opts o = { 0 };
	struct metrics_buf b = { 0 };
	long repeat = 0, pages = 1;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'p': o.procfs = optarg; break;
		case 's': o.sysfs = optarg; break;
		case 'r': o.rootfs = optarg; break;
		case 'u': o.udev_data = optarg; break;
		case 't': o.textfile_dir = optarg; break;
		case 'n': repeat = strtol(optarg, NULL, 10); break;
		case 'P': pages = strtol(optarg, NULL, 10); break;
		default: return 2;
		}
	}
	if (host__configure(&o)) {
		fprintf(stderr, "sonde-hostdump: path too long\n");
		return 2;
	}
	if (repeat <= 0) {
		for (long i = 0; i < pages; i++) {
			b.len = 0;
			if (host__collect(&b))
				return 1;
			fwrite(b.data, 1, b.len, stdout);
		}
		metrics_buf__free(&b);
		return 0;
	}
	host__account(1);
	for (long i = 0; i < repeat; i++) {
		b.len = 0;
		if (host__collect(&b))
			return 1;
	}
	host__print_cost(stdout, repeat);
	metrics_buf__free(&b);
	return 0;
}
