"""PyMySQL client for test_db.py (run with Debian's /usr/bin/python3, where
python3-pymysql is installed): plain queries, a syntax error, and a
server-side prepared statement (COM_STMT_PREPARE, 2 x COM_STMT_EXECUTE,
COM_STMT_CLOSE) spoken through PyMySQL's packet layer. No libmysqlclient."""
import struct
import sys

import pymysql
from pymysql.constants import CLIENT, COMMAND

port = int(sys.argv[1])
c = pymysql.connect(host="127.0.0.1", port=port, user="root", database="sonde", autocommit=True)
cur = c.cursor()
cur.execute("CREATE TABLE sonde_items (id INT, name VARCHAR(64))")
for i in range(3):
    cur.execute("INSERT INTO sonde_items VALUES (%s, %s)", (i, "secret-literal-%d" % i))
cur.execute("SELECT name FROM sonde_items WHERE id IN (1, 2)")
print("rows", len(cur.fetchall()))
try:
    cur.execute("SELEC broken")
except pymysql.err.ProgrammingError as e:
    print("error", e.args[0])

eof = not (c.server_capabilities & c.client_flag & CLIENT.DEPRECATE_EOF)
c._execute_command(COMMAND.COM_STMT_PREPARE, "SELECT COUNT(*) FROM sonde_items WHERE id > 0")
ok = c._read_packet().get_all_data()
stmt_id, ncols, nparams = struct.unpack("<xIHH", ok[:9])
for _ in range(nparams + ncols + (eof and nparams > 0) + (eof and ncols > 0)):
    c._read_packet()
for _ in range(2):
    c._execute_command(COMMAND.COM_STMT_EXECUTE, struct.pack("<IBI", stmt_id, 0, 1))
    n = c._read_packet().get_all_data()[0]	# column count
    for _ in range(n + eof):
        c._read_packet()
    rows = 0
    while True:
        p = c._read_packet()
        if p.get_all_data()[0] == 0xfe and len(p.get_all_data()) < 0xffffff:
            break
        rows += 1
    print("executed", rows)
c._execute_command(COMMAND.COM_STMT_CLOSE, struct.pack("<I", stmt_id))
c.close()
