/* Unit tests for the service-name rule (user/util/proc.c): exact names for
 * the override, kernel basenames, readlink paths, replaced executables,
 * and the comm and "unknown" fallbacks. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "util/proc.h"

static char out[PROC_NAME_MAX];

static const char *svc(const char *override, const char *exe, const char *comm)
{
	memset(out, 'X', sizeof(out));
	return proc__service_name(override, exe, comm, out, sizeof(out));
}

static void test_override(void)
{
	const char *o = "checkout";

	/* returned as given, whatever else is known */
	CHECK(svc(o, "/usr/bin/python3.11", "python3") == o);
	CHECK(svc(o, NULL, NULL) == o);
	CHECK(svc(o, "", "") == o);
	CHECK_EQ_STR(svc("", "/usr/bin/nginx", "nginx"), "");	/* set, though empty */
}

static void test_exe(void)
{
	/* the kernel's basename */
	CHECK_EQ_STR(svc(NULL, "nginx", "nginx: worker"), "nginx");
	CHECK(svc(NULL, "nginx", "w") == out);
	/* a readlink path */
	CHECK_EQ_STR(svc(NULL, "/usr/sbin/nginx", "nginx: worker"), "nginx");
	CHECK_EQ_STR(svc(NULL, "/usr/local/bin/python3.11", "gunicorn"), "python3.11");
	CHECK_EQ_STR(svc(NULL, "/init", "x"), "init");
	/* an executable replaced on disk */
	CHECK_EQ_STR(svc(NULL, "/opt/app/server (deleted)", "server"), "server");
	CHECK_EQ_STR(svc(NULL, "/memfd:payload (deleted)", "x"), "memfd:payload");
	CHECK_EQ_STR(svc(NULL, "/a (deleted)", "x"), "a");
	/* only readlink appends it: a kernel basename keeps it */
	CHECK_EQ_STR(svc(NULL, "app (deleted)", "x"), "app (deleted)");
	/* spaces elsewhere are the name's */
	CHECK_EQ_STR(svc(NULL, "/srv/my app", "x"), "my app");
}

static void test_fallbacks(void)
{
	CHECK_EQ_STR(svc(NULL, "", "postgres"), "postgres");
	CHECK_EQ_STR(svc(NULL, NULL, "postgres"), "postgres");
	CHECK_EQ_STR(svc(NULL, "", ""), "unknown");
	CHECK_EQ_STR(svc(NULL, NULL, NULL), "unknown");
	CHECK(svc(NULL, "", "") == out);
}

static void test_cut(void)
{
	char big[200], small[8];

	memset(big, 'a', sizeof(big));
	big[0] = '/';
	big[sizeof(big) - 1] = 0;
	CHECK_EQ_INT(strlen(svc(NULL, big, "x")), PROC_NAME_MAX - 1);
	CHECK_EQ_INT(strlen(svc(NULL, big + 1, "x")), PROC_NAME_MAX - 1);
	CHECK_EQ_INT(strlen(svc(NULL, "", big)), PROC_NAME_MAX - 1);
	/* the override is never cut */
	CHECK_EQ_INT(strlen(svc(big, NULL, NULL)), sizeof(big) - 1);

	memset(small, 'X', sizeof(small));
	CHECK_EQ_STR(proc__service_name(NULL, "/usr/bin/postgres (deleted)", "", small, 6), "postg");
	CHECK(small[6] == 'X');	/* nothing written past n */
	CHECK_EQ_STR(proc__service_name(NULL, "", "postgres", small, 6), "postg");
	CHECK_EQ_STR(proc__service_name(NULL, "", "", small, 1), "");
}

int main(void)
{
	test_override();
	test_exe();
	test_fallbacks();
	test_cut();
	return check_summary("test_proc");
}
