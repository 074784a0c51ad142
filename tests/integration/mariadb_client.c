/* libmariadb client for test_db.py: two queries, a syntax error and a
 * prepared statement executed twice, optionally over TLS (argv[2] = "tls"),
 * so the mysql_* uprobes are seen joined to the wire, or alone. */
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void run(MYSQL *m, const char *q)
{
	MYSQL_RES *r;

	if (mysql_real_query(m, q, strlen(q))) {
		printf("error %u\n", mysql_errno(m));
		return;
	}
	r = mysql_store_result(m);
	if (r)
		mysql_free_result(r);
	printf("ok\n");
}

int main(int argc, char **argv)
{
	MYSQL *m = mysql_init(NULL);
	MYSQL_STMT *st;
	const char *ps = "SELECT COUNT(*) FROM sonde_lib WHERE id > 0";
	my_bool on = 1, off = 0;

	if (argc < 2)
		return 2;
	if (argc > 2 && strcmp(argv[2], "tls") == 0) {
		mysql_optionsv(m, MYSQL_OPT_SSL_ENFORCE, &on);
		mysql_optionsv(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &off);
	} else {
		mysql_optionsv(m, MYSQL_OPT_SSL_ENFORCE, &off);
	}
	if (!mysql_real_connect(m, "127.0.0.1", "root", NULL, "sonde", (unsigned)atoi(argv[1]), NULL, 0)) {
		printf("connect: %s\n", mysql_error(m));
		return 1;
	}
	printf("cipher %s\n", mysql_get_ssl_cipher(m) ? "yes" : "none");
	run(m, "CREATE TABLE IF NOT EXISTS sonde_lib (id INT)");
	run(m, "INSERT INTO sonde_lib VALUES (7)");
	run(m, "SELEC lib_oops");
	st = mysql_stmt_init(m);
	if (mysql_stmt_prepare(st, ps, strlen(ps)))
		return 1;
	for (int i = 0; i < 2; i++) {
		if (mysql_stmt_execute(st) || mysql_stmt_store_result(st))
			return 1;
		mysql_stmt_free_result(st);
		printf("executed\n");
	}
	mysql_stmt_close(st);
	mysql_close(m);
	return 0;
}
