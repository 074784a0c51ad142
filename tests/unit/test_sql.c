/* Unit tests for user/span/sql.c: normalisation, operation and table names. */
#include <string.h>

#include "check.h"
#include "span/sql.h"

static const char *norm(const char *s, enum sql_dialect d)
{
	static char out[256];

	sql__normalize(s, strlen(s), d, out, sizeof(out));
	return out;
}

static const char *op(const char *s)
{
	static char out[32];

	sql__operation(s, strlen(s), out, sizeof(out));
	return out;
}

static const char *coll(const char *s)
{
	static char out[64];

	sql__collection(s, strlen(s), out, sizeof(out));
	return out;
}

int main(void)
{
	char small[8];
	size_t n;

	/* literals, whitespace, comments */
	CHECK_EQ_STR(norm("SELECT  *\n FROM t WHERE a = 'x''y' AND b=42", SQL_POSTGRES),
		     "SELECT * FROM t WHERE a = ? AND b=?");
	CHECK_EQ_STR(norm("select 1.5e-3, .5, 0x1F, -7 -- trailing\n", SQL_POSTGRES),
		     "select ?, ?, ?, ?");
	CHECK_EQ_STR(norm("UPDATE a SET x = x + -4171 WHERE id = 3", SQL_POSTGRES),
		     "UPDATE a SET x = x + ? WHERE id = ?");
	CHECK_EQ_STR(norm("SELECT a - 1 FROM t", SQL_POSTGRES), "SELECT a - ? FROM t");
	CHECK_EQ_STR(norm("/* hint */SELECT t1.c2 FROM t1", SQL_POSTGRES), "SELECT t1.c2 FROM t1");
	CHECK_EQ_STR(norm("SELECT \"Weird Col\" FROM \"T\" WHERE x = $1", SQL_POSTGRES),
		     "SELECT \"Weird Col\" FROM \"T\" WHERE x = $1");
	CHECK_EQ_STR(norm("SELECT $$it's$$, $tag$a$b$tag$, E'\\n'", SQL_POSTGRES), "SELECT ?, ?, ?");
	CHECK_EQ_STR(norm("SELECT \"secret\" FROM t # c\n", SQL_MYSQL), "SELECT ? FROM t");
	CHECK_EQ_STR(norm("SELECT 'a\\'b' FROM `t`", SQL_MYSQL), "SELECT ? FROM `t`");
	CHECK_EQ_STR(norm("SELECT x FROM t WHERE id IN (1, 2, 3)", SQL_POSTGRES),
		     "SELECT x FROM t WHERE id IN (?)");
	CHECK_EQ_STR(norm("SELECT x FROM t WHERE id in ('a','b') AND y IN ($1, $2)", SQL_POSTGRES),
		     "SELECT x FROM t WHERE id in (?) AND y IN ($1, $2)");
	CHECK_EQ_STR(norm("INSERT INTO t VALUES (1, 'a')", SQL_MYSQL), "INSERT INTO t VALUES (?, ?)");
	CHECK_EQ_STR(norm("SELECT 'unterminated", SQL_POSTGRES), "SELECT ?");
	CHECK_EQ_STR(norm("SELECT /* open comment", SQL_POSTGRES), "SELECT");
	CHECK_EQ_STR(norm("", SQL_POSTGRES), "");
	/* bounded output: cut between tokens, NUL-terminated */
	n = sql__normalize("SELECT abc FROM t", 17, SQL_POSTGRES, small, sizeof(small));
	CHECK_EQ_INT(n, 6);
	CHECK_EQ_STR(small, "SELECT");
	n = sql__normalize("SELECT 1", 8, SQL_POSTGRES, small, 0);
	CHECK_EQ_INT(n, 0);
	/* never reads past len: a literal cut by len */
	n = sql__normalize("SELECT 'abcdef'", 10, SQL_POSTGRES, small, sizeof(small));
	CHECK_EQ_STR(small, "SELECT");

	/* operation */
	CHECK_EQ_STR(op("  select 1"), "SELECT");
	CHECK_EQ_STR(op("-- c\nINSERT INTO t VALUES (1)"), "INSERT");
	CHECK_EQ_STR(op("begin"), "BEGIN");
	CHECK_EQ_STR(op("END;"), "END");
	CHECK_EQ_STR(op("(SELECT 1) UNION (SELECT 2)"), "SELECT");
	CHECK_EQ_STR(op("WITH x AS (SELECT 1 FROM a) UPDATE t SET c = 1"), "UPDATE");
	CHECK_EQ_STR(op("WITH RECURSIVE r(n) AS (VALUES (1)) SELECT n FROM r"), "SELECT");
	CHECK_EQ_STR(op("WITH broken"), "");
	CHECK_EQ_STR(op("'literal'"), "");
	CHECK_EQ_STR(op(""), "");

	/* collection */
	CHECK_EQ_STR(coll("SELECT abalance FROM pgbench_accounts WHERE aid = 1"), "pgbench_accounts");
	CHECK_EQ_STR(coll("SELECT a FROM (SELECT b FROM inner_t) s"), "");
	CHECK_EQ_STR(coll("SELECT (SELECT max(x) FROM inner_t) FROM outer_t"), "outer_t");
	CHECK_EQ_STR(coll("select * from public.\"Users\" u"), "public.Users");
	CHECK_EQ_STR(coll("SELECT * FROM `db`.`t1`"), "db.t1");
	CHECK_EQ_STR(coll("INSERT INTO pgbench_history (tid) VALUES (1)"), "pgbench_history");
	CHECK_EQ_STR(coll("insert ignore into t2 values (1)"), "t2");
	CHECK_EQ_STR(coll("REPLACE INTO t3 VALUES (1)"), "t3");
	CHECK_EQ_STR(coll("UPDATE ONLY t4 SET a = 1"), "t4");
	CHECK_EQ_STR(coll("DELETE FROM t5 WHERE a = 1"), "t5");
	CHECK_EQ_STR(coll("CREATE TABLE IF NOT EXISTS t6 (a int)"), "t6");
	CHECK_EQ_STR(coll("CREATE TEMP TABLE t7 (a int)"), "t7");
	CHECK_EQ_STR(coll("CREATE INDEX i ON t8 (a)"), "");
	CHECK_EQ_STR(coll("DROP TABLE IF EXISTS t9"), "t9");
	CHECK_EQ_STR(coll("TRUNCATE TABLE t10"), "t10");
	CHECK_EQ_STR(coll("TRUNCATE t11"), "t11");
	CHECK_EQ_STR(coll("COPY t12 FROM STDIN"), "t12");
	CHECK_EQ_STR(coll("WITH c AS (SELECT 1 FROM a) SELECT * FROM c"), "c");
	CHECK_EQ_STR(coll("BEGIN"), "");
	CHECK_EQ_STR(coll("SELECT 1"), "");
	CHECK_EQ_STR(coll("SELECT * FROM"), "");
	return check_summary("test_sql");
}
