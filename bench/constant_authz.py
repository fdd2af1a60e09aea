"""`python -m bench.constant_authz PORT`: an ext_authz server that allows everything with
a fixed, empty OK answer, on authz_server's native front end.

The end-to-end bench puts it behind a fourth gateway (ext_authz_floor): what Envoy's
ext_authz filter costs with an authorization service that costs almost nothing, i.e. the
most any ext_authz service could reach on this machine."""

from __future__ import annotations

import signal
import sys
import threading

from envoy.service.auth.v3 import external_auth_pb2
from google.rpc import code_pb2, status_pb2

from authz_server.frontends import CHECK_PATH
from authz_server.h2grpc.server import H2GrpcServer

ALLOW = external_auth_pb2.CheckResponse(status=status_pb2.Status(code=code_pb2.OK),
                                        ok_response=external_auth_pb2.OkHttpResponse()).SerializeToString()


def main(argv: list[str]) -> int:
    port = int(argv[0])
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda signum, frame: stopping.set())
    server = H2GrpcServer({CHECK_PATH: lambda message: ALLOW}, port=port)
    server.start()
    print("ready", flush=True)
    stopping.wait()
    server.stop(grace=0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
