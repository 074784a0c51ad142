"""HTTPS client for test_tls.py (urllib, certificate not verified): GETs
each path given after PORT on one connection per request and prints each
status. Reads the bodies, so each response is complete. With --blocking
first, no timeout: the socket stays blocking, so a read waits inside
SSL_read_ex (with a timeout Python polls between non-blocking calls)."""
import ssl
import sys
import urllib.error
import urllib.request

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
args = sys.argv[1:]
blocking = args[0] == "--blocking"
if blocking:
    args = args[1:]
kw = {} if blocking else {"timeout": 10}
port = args[0]
for path in args[1:]:
    try:
        with urllib.request.urlopen(f"https://127.0.0.1:{port}{path}", context=ctx, **kw) as r:
            r.read()
            print(r.status, flush=True)
    except urllib.error.HTTPError as e:
        e.read()
        print(e.code, flush=True)
