"""`python -m authz_server`: serve ext_authz on 127.0.0.1:<authz_port>, fed by admin_api.

With PORTCULLIS_AUTHZ_WORKERS=N>1 this process supervises N workers (`--worker i`),
worker i serving on authz_port + i (see authz_server.workers). The serving itself is
authz_server.process."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from portcullis_shared.settings import SettingsError
from portcullis_shared.tls import PlaintextRefused, plaintext_refusal

from authz_server import compiled
from authz_server.settings import THROTTLE_TABLE_VARIABLE, AuthzSettings
from authz_server.throttle.table_file import shared_counter_table
from authz_server.upb import ProtobufBackendError, require_upb
from authz_server.workers import Supervisor, parse_worker_index

log = logging.getLogger("authz_server")


def main(argv: list[str] | None = None) -> int:
    worker_index = parse_worker_index(sys.argv[1:] if argv is None else argv)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda signum, frame: stopping.set())
    # Workers share the supervisor's log: each line says which worker wrote it.
    who = f" worker-{worker_index}" if worker_index is not None else ""
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s %(name)s{who} %(message)s",
    )
    try:
        require_upb()
        settings = AuthzSettings.from_env()
        plaintext_refusal(settings.mesh.tls, "authz_server (ext_authz gRPC)")
        tls = settings.mesh.tls_files
        if tls is not None:
            tls.require("authz")   # a half-set certificate setting stops here, by name
    except (ProtobufBackendError, SettingsError) as exc:
        log.error("%s", exc)
        return 2
    except PlaintextRefused as exc:
        log.error("refusing to start: %s", exc)
        return 2
    if worker_index is None:
        log.info("%s", compiled.status().reason)
    if worker_index is None and settings.workers > 1:
        log.info("starting %d workers with %r", settings.workers, settings)
        with shared_counter_table(settings.throttle.counters) as table_path:
            return _supervise(settings, stopping, {THROTTLE_TABLE_VARIABLE: table_path})
    if worker_index is None:
        log.info("starting with %r", settings)
    # Imported here: the supervisor stays small (no grpc, no index) and only its workers load them.
    from authz_server.process import serve

    return serve(settings, stopping, worker_index)


def _supervise(settings: AuthzSettings, stopping: threading.Event, worker_env: dict[str, str]) -> int:
    """The supervisor: its workers, and the one scrape target covering all of them."""
    supervisor = Supervisor(settings.workers, metrics=settings.metrics, env=worker_env)
    metrics = None
    if settings.metrics:
        from authz_server.metrics.server import serve_metrics

        try:
            metrics = serve_metrics(settings.mesh.host, settings.mesh.authz_metrics_port, supervisor.metric_answers,
                                    max_apis=settings.metrics_max_apis)
        except OSError as exc:
            log.error("cannot serve metrics on %s:%d: %s", settings.mesh.host, settings.mesh.authz_metrics_port, exc)
            return 1
    try:
        return supervisor.run(stopping)
    finally:
        if metrics is not None:
            metrics.stop()


if __name__ == "__main__":
    sys.exit(main())
