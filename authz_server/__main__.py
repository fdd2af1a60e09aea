"""`python -m authz_server`: serve ext_authz on 127.0.0.1:<authz_port>, fed by admin_api."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from portcullis_shared.settings import SettingsError

from authz_server.index.store import PolicyStore
from authz_server.server import ProtobufBackendError, require_upb, start_server
from authz_server.settings import AuthzSettings
from authz_server.sync_client import PolicySyncClient, token_source

log = logging.getLogger("authz_server")


def main() -> int:
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda signum, frame: stopping.set())
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        require_upb()
        settings = AuthzSettings.from_env()
    except (ProtobufBackendError, SettingsError) as exc:
        log.error("%s", exc)
        return 2
    log.info("starting with %r", settings)

    store = PolicyStore()
    try:
        server = start_server(
            store,
            host=settings.mesh.host,
            port=settings.mesh.authz_port,
            trusted_hops=settings.trusted_hops,
            workers=settings.workers,
        )
    except (OSError, RuntimeError) as exc:
        log.error("cannot serve on %s: %s", settings.listen_address, exc)
        return 1
    sync = PolicySyncClient(
        store,
        settings.admin_grpc_target,
        token_source(settings.sync_token, settings.mesh.sync_token_file),
    )
    sync.start()
    try:
        while not stopping.wait(1.0):
            pass
    finally:
        log.info("shutting down")
        sync.stop()
        server.stop(grace=2.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
