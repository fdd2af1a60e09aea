"""`python -m authz_server`: serve ext_authz on 127.0.0.1:<authz_port>, fed by admin_api."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time

from portcullis_shared.settings import SettingsError

from authz_server.index.store import PolicyStore
from authz_server.server import ProtobufBackendError, require_upb, start_server
from authz_server.settings import AuthzSettings
from authz_server.sync_client import PolicySyncClient, token_source
from authz_server.tokens.services import TokenServices

log = logging.getLogger("authz_server")

# How often revocations of tokens that have expired since are dropped from the index.
_PRUNE_SECONDS = 60.0


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
    sync_token = token_source(settings.sync_token, settings.mesh.sync_token_file)
    # The resident key manager's introspection takes this replica's sync token.
    tokens = TokenServices.from_settings(settings.tokens, sync_token=sync_token)
    tokens.start(store)
    try:
        server = start_server(
            store,
            host=settings.mesh.host,
            port=settings.mesh.authz_port,
            trusted_hops=settings.trusted_hops,
            workers=settings.workers,
            tokens=tokens,
        )
    except (OSError, RuntimeError) as exc:
        log.error("cannot serve on %s: %s", settings.listen_address, exc)
        tokens.stop()
        return 1
    sync = PolicySyncClient(store, settings.admin_grpc_target, sync_token)
    sync.start()
    try:
        next_prune = time.monotonic() + _PRUNE_SECONDS
        while not stopping.wait(1.0):
            if time.monotonic() >= next_prune:
                pruned = store.prune(time.time())
                if pruned:
                    log.info("dropped %d revocations of expired tokens", pruned)
                next_prune = time.monotonic() + _PRUNE_SECONDS
    finally:
        log.info("shutting down")
        sync.stop()
        server.stop(grace=2.0)
        tokens.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
