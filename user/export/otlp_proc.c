/* Process facts for OTLP resources: the executable's basename and the
 * command line of a pid, read from /proc into a small round-robin cache. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "export/otlp_proc.h"

#define TTL_NS (30ULL * 1000000000ULL)

static void read_proc(const struct otlp_proc_cache *c, uint32_t pid, struct otlp_proc *p)
{
	char path[64], buf[PATH_MAX];
	ssize_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%u/exe", pid);
	n = readlink(path, buf, sizeof(buf) - 1);
	/* a process gone since the last read keeps what was known of it */
	if (n <= 0 && p->read_ns)
		return;
	p->exe[0] = p->cmd[0] = 0;
	if (n > 0) {
		const char *base;

		buf[n] = 0;
		base = strrchr(buf, '/');
		base = base ? base + 1 : buf;
		snprintf(p->exe, sizeof(p->exe), "%.*s", (int)sizeof(p->exe) - 1, base);
	}
	snprintf(path, sizeof(path), "/proc/%u/cmdline", pid);
	f = fopen(path, "re");
	if (f) {
		/* arguments are NUL-terminated; the last one may be cut */
		size_t len = fread(buf, 1, sizeof(p->cmd) - 1, f), pos = 0;

		fclose(f);
		while (len && buf[len - 1] == 0)
			len--;
		for (size_t a = 0; a < len && pos < sizeof(p->cmd) - 1;) {
			size_t n = strnlen(buf + a, len - a);

			if (pos)
				p->cmd[pos++] = ' ';
			pos += redact__target(&c->redact, buf + a, n, p->cmd + pos, sizeof(p->cmd) - pos);
			a += n + 1;
		}
		p->cmd[pos] = 0;
	}
}

const struct otlp_proc *otlp_proc__get(struct otlp_proc_cache *c, uint32_t pid, uint64_t now_ns)
{
	struct otlp_proc *p = NULL;

	for (int i = 0; i < OTLP_PROC_CACHE; i++)
		if (c->e[i].pid == pid) {
			p = &c->e[i];
			break;
		}
	if (!p) {
		p = &c->e[c->next++ % OTLP_PROC_CACHE];
		p->pid = pid;
		p->read_ns = 0;
	}
	if (!p->read_ns || now_ns - p->read_ns > TTL_NS) {
		read_proc(c, pid, p);
		p->read_ns = now_ns;
	}
	return p;
}
