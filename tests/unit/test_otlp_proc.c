/* Unit tests for export/otlp_proc.c: the facts of this process and of a
 * child, the 30 s re-read, a pid that is gone, redacted arguments, and
 * round-robin eviction. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "export/otlp_proc.h"

#define S 1000000000ULL
#define NO_PID 0x7ffffff0u	/* above pid_max's ceiling (4194304): never a process */

static struct otlp_proc_cache cache;

/* The make rules run each test by its path, without arguments. */
static void test_self(const char *argv0)
{
	const struct otlp_proc *p = otlp_proc__get(&cache, (uint32_t)getpid(), 5 * S);
	const char *base = strrchr(argv0, '/');

	CHECK_EQ_INT(p->pid, getpid());
	CHECK_EQ_INT(p->read_ns, 5 * S);
	CHECK_EQ_STR(p->exe, base ? base + 1 : argv0);
	CHECK_EQ_STR(p->cmd, argv0);
	/* within the TTL: the same entry, not read again */
	CHECK(otlp_proc__get(&cache, (uint32_t)getpid(), 35 * S) == p);
	CHECK_EQ_INT(p->read_ns, 5 * S);
	/* past it: read again */
	CHECK(otlp_proc__get(&cache, (uint32_t)getpid(), 35 * S + 1) == p);
	CHECK_EQ_INT(p->read_ns, 35 * S + 1);
}

static void test_unknown(void)
{
	const struct otlp_proc *p = otlp_proc__get(&cache, NO_PID, 1);

	CHECK_EQ_INT(p->pid, NO_PID);
	CHECK_EQ_STR(p->exe, "");
	CHECK_EQ_STR(p->cmd, "");
}

/* A child with arguments; once it has exited, a re-read keeps its facts. */
static void test_gone(void)
{
	int fds[2];
	char c, want[64], sh[PATH_MAX];
	const struct otlp_proc *p;
	pid_t pid;

	CHECK_EQ_INT(pipe(fds), 0);
	pid = fork();
	if (pid == 0) {
		/* reads the pipe: blocks until the parent writes */
		dup2(fds[0], 0);
		close(fds[1]);
		execl("/bin/sh", "sh", "-c", "read x", "sonde-test", "a b", (char *)NULL);
		_exit(127);
	}
	close(fds[0]);
	/* wait for the exec: /proc/<pid>/exe is the shell once cmdline says so */
	for (int i = 0; i < 1000; i++) {
		char path[64];
		FILE *f;
		size_t n = 0;

		snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
		f = fopen(path, "re");
		if (f) {
			n = fread(want, 1, 2, f);
			fclose(f);
		}
		if (n == 2 && memcmp(want, "sh", 2) == 0)
			break;
		usleep(1000);
	}
	p = otlp_proc__get(&cache, (uint32_t)pid, 100 * S);
	/* /bin/sh is a link (to dash on Debian): exe is what it resolves to */
	CHECK(realpath("/bin/sh", sh) != NULL);
	CHECK_EQ_STR(p->exe, strrchr(sh, '/') + 1);
	CHECK_EQ_STR(p->cmd, "sh -c read x sonde-test a b");
	snprintf(want, sizeof(want), "%s", p->exe);
	c = 'x';
	CHECK_EQ_INT(write(fds[1], &c, 1), 1);
	close(fds[1]);
	CHECK_EQ_INT(waitpid(pid, NULL, 0), pid);
	p = otlp_proc__get(&cache, (uint32_t)pid, 200 * S);
	CHECK_EQ_INT(p->read_ns, 200 * S);
	CHECK_EQ_STR(p->exe, want);
	CHECK_EQ_STR(p->cmd, "sh -c read x sonde-test a b");
}

/* A child `sh -c "read x" sonde-test a1 a2`, blocked on its stdin until
 * *wfd is written; returns once it has exec'ed. */
static pid_t spawn_sh(const char *a1, const char *a2, int *wfd)
{
	int fds[2];
	pid_t pid;

	CHECK_EQ_INT(pipe(fds), 0);
	pid = fork();
	if (pid == 0) {
		dup2(fds[0], 0);
		close(fds[1]);
		execl("/bin/sh", "sh", "-c", "read x", "sonde-test", a1, a2, (char *)NULL);
		_exit(127);
	}
	close(fds[0]);
	for (int i = 0; i < 1000; i++) {
		char path[64], b[2];
		FILE *f;
		size_t n = 0;

		snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
		f = fopen(path, "re");
		if (f) {
			n = fread(b, 1, 2, f);
			fclose(f);
		}
		if (n == 2 && memcmp(b, "sh", 2) == 0)
			break;
		usleep(1000);
	}
	*wfd = fds[1];
	return pid;
}

static void reap(pid_t pid, int wfd)
{
	char c = 'x';

	CHECK_EQ_INT(write(wfd, &c, 1), 1);
	close(wfd);
	CHECK_EQ_INT(waitpid(pid, NULL, 0), pid);
}

/* Arguments go through the cache's redact rule (`curl "URL?password=..."`
 * must not put the password into process.command_line). */
static void test_redacted(void)
{
	static const char url[] = "http://bob:hunter2@h:8080/login?user=bob&password=S3CRET";
	const struct otlp_proc *p;
	int wfd;
	pid_t pid;

	memset(&cache, 0, sizeof(cache));	/* zeroed: the default rule */
	pid = spawn_sh(url, "/x?API_KEY=k&q=a b", &wfd);
	p = otlp_proc__get(&cache, (uint32_t)pid, 1);
	CHECK_EQ_STR(p->cmd, "sh -c read x sonde-test http://REDACTED:REDACTED@h:8080/login?user=bob&password=REDACTED "
			     "/x?API_KEY=REDACTED&q=a b");
	CHECK(redact__init(&cache.redact, REDACT_KEEP, NULL) == 0);
	p = otlp_proc__get(&cache, (uint32_t)pid, 1 + 31 * S);
	CHECK_EQ_STR(p->cmd, "sh -c read x sonde-test http://REDACTED:REDACTED@h:8080/login?user=bob&password=S3CRET "
			     "/x?API_KEY=k&q=a b");
	reap(pid, wfd);

	/* growth past the 511 bytes kept: cut, never a secret */
	{
		char many[400] = "/m?";

		while (strlen(many) + 8 < sizeof(many))
			strcat(many, "&token=t");
		memset(&cache, 0, sizeof(cache));
		pid = spawn_sh(many, "tail?pwd=TAILSECRET", &wfd);
		p = otlp_proc__get(&cache, (uint32_t)pid, 1);
		CHECK_EQ_INT(strlen(p->cmd), sizeof(p->cmd) - 1);
		CHECK(strstr(p->cmd, "=t&") == NULL && strstr(p->cmd, "TAILSECRET") == NULL);
		CHECK(strncmp(p->cmd, "sh -c read x sonde-test /m?&token=REDACTED&token=REDACTED", 57) == 0);
		reap(pid, wfd);
	}
}

/* OTLP_PROC_CACHE other pids push this one out; it is read afresh. */
static void test_evict(void)
{
	const struct otlp_proc *p;

	memset(&cache, 0, sizeof(cache));
	p = otlp_proc__get(&cache, (uint32_t)getpid(), 1);
	CHECK_EQ_INT(p->read_ns, 1);
	for (uint32_t i = 0; i < OTLP_PROC_CACHE; i++)
		otlp_proc__get(&cache, NO_PID + 1 + i, 2);
	for (int i = 0; i < OTLP_PROC_CACHE; i++)
		CHECK(cache.e[i].pid != (uint32_t)getpid());
	p = otlp_proc__get(&cache, (uint32_t)getpid(), 3);
	CHECK_EQ_INT(p->pid, getpid());
	CHECK_EQ_INT(p->read_ns, 3);
	CHECK(p == &cache.e[1]);	/* self took 0, the others 1..127 and 0 again */
}

int main(int argc, char **argv)
{
	(void)argc;
	test_self(argv[0]);
	test_unknown();
	test_gone();
	test_redacted();
	test_evict();
	return check_summary("test_otlp_proc");
}
