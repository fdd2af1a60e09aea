"""`python -m tests.hostile.h2_worker`: one authz_server worker's native front end, alone.

The real Check and health handlers on an empty policy store, with the front end's limits
read from the environment exactly as authz_server reads them (PORTCULLIS_AUTHZ_H2_*,
PORTCULLIS_AUTHZ_MAX_CONCURRENT_RPCS). It prints its port, then serves until its stdin
closes: a test that dies takes it along. Its own process, so that a test can read its RSS.
"""

from __future__ import annotations

import logging
import sys

from authz_server.frontends import start_server
from authz_server.index import PolicyStore
from authz_server.settings import AuthzSettings


def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    settings = AuthzSettings.from_env()
    running = start_server(PolicyStore(), host="127.0.0.1", port=0, workers=settings.threads,
                           max_concurrent_rpcs=settings.max_concurrent_rpcs, h2=settings.h2)
    print(running.port, flush=True)
    sys.stdin.read()   # until the test closes our stdin (or dies)
    running.stop(grace=0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
