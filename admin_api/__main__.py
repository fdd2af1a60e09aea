"""`python -m admin_api`: migrate, bootstrap, serve gRPC and REST until SIGINT/SIGTERM."""

from __future__ import annotations

import importlib.util
import logging
import signal
import sys
import threading
from types import FrameType

from admin_api.app import AdminApp, create_admin_app
from portcullis_shared.settings import MeshSettings, SettingsError
from portcullis_shared.tls import PlaintextRefused, plaintext_refusal
from portcullis_shared.tls_context import ALPN_HTTP11, client_context
from portcullis_shared.tls_reload import ReloadingServerContext

log = logging.getLogger("admin_api")


def _install_stop_handlers(stop: threading.Event) -> None:
    # Our handlers stay in place under uvicorn's, which re-raises the signal after its own
    # graceful shutdown: that then sets `stop` instead of killing the process mid-cleanup.
    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def _serve_rest(app: AdminApp, stop: threading.Event) -> None:
    """Serve REST in this (main) thread until a signal arrives."""
    if importlib.util.find_spec("admin_api.transports.rest") is None:
        log.warning("admin_api.transports.rest is not available: serving gRPC only")
        stop.wait()
        return
    import uvicorn

    from admin_api.backend_jwt.keys import BackendSigningKeys
    from admin_api.portal.routes import create_portal, portal_routes
    from admin_api.transports.backend_jwks import backend_jwt_routes
    from admin_api.transports.oauth2.resident import ResidentKeyManager
    from admin_api.transports.oauth2.routes import oauth_routes
    from admin_api.transports.rest import create_app

    resident = ResidentKeyManager.create(app.store)
    backend_keys = BackendSigningKeys(app.store, app.store.config.require_kek())
    settings = app.settings
    tls = settings.tls_files
    # Try it calls Envoy's gateway as an API client would: https with TLS on, checked
    # against the mesh's CA (the gateway's certificate is the local CA's with `auto`).
    portal = create_portal(app.dispatcher, resident, public_url=settings.public_url,
                           gateway_url=f"{settings.rest_scheme}://{settings.host}:{settings.gateway_port}",
                           gateway_verify=True if tls is None else client_context(tls.ca_file),
                           multiple_secrets=settings.multiple_consumer_secrets)
    routes = [*oauth_routes(resident), *backend_jwt_routes(backend_keys), *portal_routes(portal)]
    rest_app = create_app(app.dispatcher, extra_routes=routes,
                          health=app.check_database, metrics=app.metrics_registry())
    # The REST port's TLS context picks up rotated certificate files for new connections
    # (portcullis_shared.tls_reload); uvicorn serves HTTP/1.1 only.
    reloading = None if tls is None else ReloadingServerContext(tls.require("admin"), alpn=(ALPN_HTTP11,),
                                                                what="admin_api REST")
    ssl_factory = None if reloading is None else (lambda _config, _default: reloading.context)
    config = uvicorn.Config(rest_app, host=settings.bind_host, port=settings.admin_rest_port,
                            log_level="info", access_log=False, ssl_context_factory=ssl_factory)
    log.info("admin REST listening on %s://%s:%d", settings.rest_scheme, settings.bind_host, settings.admin_rest_port)
    uvicorn.Server(config).run()


def main() -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = MeshSettings.from_env()
        plaintext_refusal(settings.tls, "admin_api (REST and gRPC)")
        settings.tls_files  # noqa: B018 - a missing or half-set certificate setting stops here, by name
    except SettingsError as exc:
        log.error("bad setting: %s", exc)
        return 2
    except PlaintextRefused as exc:
        log.error("refusing to start: %s", exc)
        return 2
    stop = threading.Event()
    _install_stop_handlers(stop)
    try:
        app = create_admin_app(settings)
    except SettingsError as exc:
        log.error("bad setting: %s", exc)
        return 2
    app.start()
    try:
        _serve_rest(app, stop)
    finally:
        app.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
