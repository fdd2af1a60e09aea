"""`python -m sample_backend --environment production|sandbox --port N [--backend-jwks-url URL]`"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from sample_backend.jwt_verifier import DEFAULT_ISSUER, JwksVerifier
from sample_backend.server import ENVIRONMENTS, BackendServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sample_backend", description=__doc__)
    parser.add_argument("--environment", choices=ENVIRONMENTS, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--backend-jwks-url", default="",
                        help="verify backend JWTs with this JWKS (admin REST /backend-jwt/jwks.json) and echo them")
    parser.add_argument("--backend-jwt-header", default="x-jwt-assertion")
    parser.add_argument("--backend-jwt-issuer", default=DEFAULT_ISSUER,
                        help="the iss a backend JWT must carry: PORTCULLIS_BACKEND_JWT_ISSUER of authz_server "
                             "(the mesh passes it)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s sample_backend[{args.environment}] %(levelname)s %(message)s",
    )
    log = logging.getLogger("sample_backend")
    verifier = JwksVerifier(args.backend_jwks_url, issuer=args.backend_jwt_issuer) if args.backend_jwks_url else None
    server = BackendServer((args.host, args.port), args.environment, verifier=verifier,
                           backend_jwt_header=args.backend_jwt_header)

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        # shutdown() waits for serve_forever to return, so it cannot run on that thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("serving the %s PizzaShack backend on http://%s:%d", args.environment, args.host, args.port)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
