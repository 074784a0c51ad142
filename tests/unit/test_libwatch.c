/* Unit tests for libwatch: /proc/<pid>/maps line parsing from byte fixtures,
 * then dedup, retry and the ELF symbol search on this test's own process. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "check.h"
#include "probe/libwatch.h"

static void test_parse(void)
{
	struct libwatch_mapping m;
	const char *l;

	l = "7f1c2a400000-7f1c2a4a1000 r-xp 00020000 fe:01 1835023                    "
	    "/usr/lib/x86_64-linux-gnu/libssl.so.3\n";
	CHECK_EQ_INT(libwatch__parse_maps_line(l, &m), 0);
	CHECK_EQ_INT(m.dev, makedev(0xfe, 0x01));
	CHECK_EQ_INT(m.ino, 1835023);
	CHECK_EQ_INT(m.exec, 1);
	CHECK_EQ_INT(m.path_len, strlen("/usr/lib/x86_64-linux-gnu/libssl.so.3"));
	CHECK(memcmp(m.path, "/usr/lib/x86_64-linux-gnu/libssl.so.3", m.path_len) == 0);

	/* no newline, read-only mapping, three-digit hex major/minor */
	l = "55d0c0a00000-55d0c0a01000 r--p 00000000 103:0a 42 /opt/app/bin/server";
	CHECK_EQ_INT(libwatch__parse_maps_line(l, &m), 0);
	CHECK_EQ_INT(m.dev, makedev(0x103, 0x0a));
	CHECK_EQ_INT(m.ino, 42);
	CHECK_EQ_INT(m.exec, 0);
	CHECK_EQ_INT(m.path_len, strlen("/opt/app/bin/server"));

	/* path with a space in it stays whole */
	l = "1000-2000 r-xp 00000000 08:02 77 /srv/my app/libpq.so.5\n";
	CHECK_EQ_INT(libwatch__parse_maps_line(l, &m), 0);
	CHECK_EQ_INT(m.path_len, strlen("/srv/my app/libpq.so.5"));

	/* not file-backed, or not usable */
	CHECK_EQ_INT(libwatch__parse_maps_line("7ffd1000-7ffd2000 rw-p 00000000 00:00 0 "
					       "                 [stack]\n", &m), -1);
	CHECK_EQ_INT(libwatch__parse_maps_line("7ffd1000-7ffd2000 rw-p 00000000 00:00 0\n", &m),
		     -1);
	CHECK_EQ_INT(libwatch__parse_maps_line("1000-2000 r-xp 00000000 fe:01 99 "
					       "/usr/lib/libssl.so.3 (deleted)\n", &m), -1);
	CHECK_EQ_INT(libwatch__parse_maps_line("7f00-7f01 rw-s 00000000 00:01 1025 "
					       "/dev/zero (deleted)\n", &m), -1);
	/* malformed */
	CHECK_EQ_INT(libwatch__parse_maps_line("", &m), -1);
	CHECK_EQ_INT(libwatch__parse_maps_line("garbage\n", &m), -1);
	CHECK_EQ_INT(libwatch__parse_maps_line("1000-2000 r-x", &m), -1);
	CHECK_EQ_INT(libwatch__parse_maps_line("1000-2000 r-xp 0 fe01 5 /x\n", &m), -1);
	CHECK_EQ_INT(libwatch__parse_maps_line("1000-2000 r-xp 0 fe:01 x5 /x\n", &m), -1);
	CHECK_EQ_INT(libwatch__parse_maps_line("1000-2000 r-xp 0 fe:01 0 /x\n", &m), -1);
	CHECK_EQ_INT(libwatch__parse_maps_line("1000-2000 r-xp 0 fe:01 5 relative\n", &m), -1);
}

struct calls {
	int n;
	int ret;
	char last[4200];
	uint32_t pid;
};

static int on_file(void *arg, const char *path, uint32_t pid)
{
	struct calls *c = arg;

	c->n++;
	snprintf(c->last, sizeof(c->last), "%s", path);
	c->pid = pid;
	return c->ret;
}

/* A function only this executable defines (found by the ELF symbol scan). */
__attribute__((noinline, used)) int libwatch_test_marker_fn(int x)
{
	return x + 1;
}

static void test_self(void)
{
	struct libwatch *w = libwatch__new();
	struct calls libc = { 0 }, failing = { .ret = -1 }, exe = { 0 }, none = { 0 };
	uint32_t me = (uint32_t)getpid();
	char prefix[64];

	CHECK(w != NULL);
	if (!w)
		return;
	CHECK_EQ_INT(libwatch__add(w, "libc.so", on_file, &libc), 0);
	CHECK_EQ_INT(libwatch__add(w, "ld-linux", on_file, &failing), 0);
	CHECK_EQ_INT(libwatch__add_exe_symbol(w, "libwatch_test_marker_fn", on_file, &exe), 0);
	CHECK_EQ_INT(libwatch__add_exe_symbol(w, "no_such_symbol_anywhere", on_file, &none), 0);
	CHECK_EQ_INT(libwatch__add(w, "", on_file, &none), -22);

	/* libc has several mappings (r--p, r-xp, ...): one call for the file */
	libwatch__scan_pid(w, me);
	CHECK_EQ_INT(libc.n, 1);
	snprintf(prefix, sizeof(prefix), "/proc/%u/root/", me);
	CHECK(strncmp(libc.last, prefix, strlen(prefix)) == 0);
	CHECK(strstr(libc.last, "/libc.so") != NULL);
	CHECK_EQ_INT(libc.pid, me);
	CHECK_EQ_INT(exe.n, 1);
	CHECK(strstr(exe.last, "test_libwatch") != NULL);
	CHECK_EQ_INT(none.n, 0);
	CHECK_EQ_INT(failing.n, 1);	/* the dynamic loader, always mapped */

	/* seen again: remembered, except the failing one, retried up to 3 times */
	libwatch__scan_pid(w, me);
	libwatch__scan_pid(w, me);
	libwatch__scan_pid(w, me);
	CHECK_EQ_INT(libc.n, 1);
	CHECK_EQ_INT(exe.n, 1);
	CHECK_EQ_INT(failing.n, 3);
	CHECK_EQ_INT(libwatch__stats(w)->exes_checked, 1);
	CHECK_EQ_INT(libwatch__stats(w)->call_failures, 3);

	/* a forgotten watcher is not called, not even for a file it never saw */
	{
		struct libwatch *w2 = libwatch__new();
		struct calls gone = { 0 }, kept = { 0 };

		CHECK(w2 != NULL);
		if (w2) {
			CHECK_EQ_INT(libwatch__add(w2, "libc.so", on_file, &gone), 0);
			CHECK_EQ_INT(libwatch__add(w2, "libc.so", on_file, &kept), 0);
			libwatch__forget(w2, &gone);
			libwatch__scan_pid(w2, me);
			CHECK_EQ_INT(gone.n, 0);
			CHECK_EQ_INT(kept.n, 1);
			libwatch__free(w2);
		}
	}

	/* a vanished pid is not an error */
	libwatch__scan_pid(w, 0x7ffffff0u);
	CHECK_EQ_INT(libc.n, 1);
	libwatch__free(w);
}

int main(void)
{
	test_parse();
	test_self();
	return check_summary("test_libwatch");
}
