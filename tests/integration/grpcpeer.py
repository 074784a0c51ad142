"""A gRPC server and client for test_grpc.py, on python3-grpcio with generic
handlers (no generated code: messages are raw bytes).

  grpcpeer.py server PORT [--tls CERT KEY]
      service demo.Echo: Unary (echoes; the request b"notfound" answers
      NOT_FOUND, b"internal" INTERNAL, b"deadline" DEADLINE_EXCEEDED) and
      Stream (server-streaming: 3 messages, or the status named likewise
      after one message).
  grpcpeer.py client PORT PLAN [--tls CERT] [--traceparent TP] [--hold]
      PLAN: comma-separated METHOD:PAYLOAD:COUNT, all calls on one channel
      (one HTTP/2 connection); prints one line "code-name count" per code.
      --hold: connect and make one call first, print "held", and run PLAN
      only once a line comes on stdin (a connection older than the agent).
Exits after its work (client) or on SIGTERM (server)."""
import signal
import sys
import threading
from concurrent import futures

import grpc

CODES = {
    b"notfound": grpc.StatusCode.NOT_FOUND,
    b"internal": grpc.StatusCode.INTERNAL,
    b"deadline": grpc.StatusCode.DEADLINE_EXCEEDED,
}


def ident(b):
    return b


def unary(request, context):
    code = CODES.get(request)
    if code is not None:
        context.abort(code, "asked for " + request.decode())
    return b"echo:" + request


def stream(request, context):
    code = CODES.get(request)
    yield b"first"
    if code is not None:
        context.abort(code, "asked for " + request.decode())
    yield b"second"
    yield b"third"


def serve(port, tls):
    handler = grpc.method_handlers_generic_handler("demo.Echo", {
        "Unary": grpc.unary_unary_rpc_method_handler(unary, ident, ident),
        "Stream": grpc.unary_stream_rpc_method_handler(stream, ident, ident),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    addr = f"127.0.0.1:{port}"
    if tls:
        with open(tls[0], "rb") as c, open(tls[1], "rb") as k:
            creds = grpc.ssl_server_credentials([(k.read(), c.read())])
        server.add_secure_port(addr, creds)
    else:
        server.add_insecure_port(addr)
    server.start()
    print("ready", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    done.wait(600)
    server.stop(0)


def client(port, plan, cert, traceparent, hold):
    addr = f"127.0.0.1:{port}"
    if cert:
        with open(cert, "rb") as f:
            creds = grpc.ssl_channel_credentials(f.read())
        ch = grpc.secure_channel(addr, creds, options=(("grpc.ssl_target_name_override", "127.0.0.1"),))
    else:
        ch = grpc.insecure_channel(addr)
    grpc.channel_ready_future(ch).result(timeout=10)
    meta = (("traceparent", traceparent),) if traceparent else None
    if hold:
        ch.unary_unary("/demo.Echo/Unary", request_serializer=ident,
                       response_deserializer=ident)(b"before", timeout=10)
        print("held", flush=True)
        sys.stdin.readline()
    counts = {}
    for item in plan.split(","):
        method, payload, n = item.split(":")
        for _ in range(int(n)):
            try:
                if method == "Unary":
                    call = ch.unary_unary("/demo.Echo/Unary", request_serializer=ident,
                                          response_deserializer=ident)
                    call(payload.encode(), timeout=10, metadata=meta)
                else:
                    call = ch.unary_stream("/demo.Echo/Stream", request_serializer=ident,
                                           response_deserializer=ident)
                    for _m in call(payload.encode(), timeout=10, metadata=meta):
                        pass
                code = "OK"
            except grpc.RpcError as e:
                code = e.code().name
            counts[code] = counts.get(code, 0) + 1
    ch.close()
    for k, v in sorted(counts.items()):
        print(k, v, flush=True)


def main():
    a = sys.argv[1:]
    if a[0] == "server":
        tls = a[3:5] if len(a) >= 5 and a[2] == "--tls" else None
        serve(int(a[1]), tls)
    else:
        cert = tp = None
        hold = "--hold" in a
        rest = [x for x in a[3:] if x != "--hold"]
        while rest:
            if rest[0] == "--tls":
                cert = rest[1]
            elif rest[0] == "--traceparent":
                tp = rest[1]
            rest = rest[2:]
        client(int(a[1]), a[2], cert, tp, hold)


if __name__ == "__main__":
    main()
