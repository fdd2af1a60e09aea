"""One authz_server process deciding: the gRPC front end, the Watch on admin_api, the
token services and the decision log, until asked to stop."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from authz_server.backend_jwt.cache import BackendJwtCache
from authz_server.backend_jwt.issuer import BackendJwtIssuer
from authz_server.decision_log import DecisionLog, install
from authz_server.frontends import HealthStatus, UnixSocket, start_server
from authz_server.index.store import PolicyStore
from authz_server.key_managers.services import TokenServices
from authz_server.metrics.recorder import recorder
from authz_server.metrics.worker import start_worker_metrics
from authz_server.settings import AuthzSettings, worker_socket_paths
from authz_server.staleness import StalenessGuard
from authz_server.throttle.limiter import Throttle
from authz_server.sync_client import Liveness, PolicySyncClient, token_source
from authz_server.usage.counter import usage
from authz_server.usage.reporter import UsageReporter
from authz_server.workers import parent_gone
from portcullis_shared.tls_context import client_context, grpc_channel_credentials

log = logging.getLogger("authz_server")

# How often revocations of tokens that have expired since are dropped from the index.
_PRUNE_SECONDS = 60.0


def _unix_socket(settings: AuthzSettings, index: int) -> UnixSocket | None:
    """Worker `index`'s Unix socket (PORTCULLIS_AUTHZ_UNIX_SOCKET), or None: TCP only."""
    path = settings.mesh.authz_unix_socket
    if path is None:
        return None
    return UnixSocket(worker_socket_paths(path, settings.workers)[index], settings.unix_socket_mode)


def serve(settings: AuthzSettings, stopping: threading.Event, worker_index: int | None) -> int:
    """One process deciding: worker `worker_index` listens on authz_port + index."""
    index = worker_index or 0
    port = settings.mesh.authz_port + index
    supervisor_pid = os.getppid() if worker_index is not None else None
    store = PolicyStore()
    recorder.enabled = settings.metrics   # before the first decision
    decisions = DecisionLog(mode=settings.decision_log, who=f" worker-{index}" if worker_index is not None else "")
    install(decisions)
    decisions.start()
    sync_token = token_source(settings.sync_token, settings.mesh.sync_token_file)
    # The resident key manager's introspection takes this replica's sync token.
    tls = settings.mesh.tls_files
    # Key managers' certificates: the system's CAs, and the mesh's for the resident one.
    verify = True if tls is None else client_context(tls.ca_file, system_roots=True)
    tokens = TokenServices.from_settings(settings.tokens, sync_token=sync_token, verify=verify)
    tokens.start(store)
    health = HealthStatus()
    replica = f"authz-server@{socket.gethostname()}:{os.getpid()}" + (f"/worker-{index}" if worker_index is not None else "")
    try:
        throttle = Throttle.from_settings(settings.throttle)
    except (OSError, RuntimeError) as exc:   # the supervisor's counter table is not usable
        log.error("cannot open the throttle counters: %s", exc)
        tokens.stop()
        install(None)
        decisions.stop()
        return 1
    throttle.start()
    try:
        server = start_server(
            store,
            health=health,
            explain_token=sync_token,
            replica=replica,
            host=settings.mesh.bind_host,
            port=port,
            tls=tls,
            trusted_hops=settings.trusted_hops,
            workers=settings.threads,
            max_concurrent_rpcs=settings.max_concurrent_rpcs,
            frontend=settings.frontend,
            event_loop=settings.event_loop,
            tokens=tokens,
            backend_jwt=BackendJwtIssuer(issuer=settings.backend_jwt.issuer,
                                         cache=BackendJwtCache(settings.backend_jwt.cache_size)),
            throttle=throttle,
            h2=settings.h2,
            unix_socket=_unix_socket(settings, index),
        )
    except (OSError, RuntimeError) as exc:
        log.error("cannot serve on %s:%d: %s", settings.mesh.bind_host, port, exc)
        throttle.stop()
        tokens.stop()
        install(None)
        decisions.stop()
        return 1
    sync = PolicySyncClient(store, settings.admin_grpc_targets, sync_token, replica=replica,
                            liveness=Liveness(heartbeat_interval=settings.mesh.sync_heartbeat_seconds),
                            credentials=None if tls is None else grpc_channel_credentials(tls.ca_file))
    sync.start()
    reporter = UsageReporter(usage, settings.admin_grpc_targets, sync_token, reporter=replica,
                             interval=settings.usage_report_seconds,
                             credentials=None if tls is None else grpc_channel_credentials(tls.ca_file))
    reporter.start()
    guard = StalenessGuard(settings.max_staleness_seconds, sync.staleness_seconds, lambda: store.ready,
                           lambda: store.revision, health)
    try:
        stop_metrics = start_worker_metrics(settings, store, sync, worker_index, serving=lambda: health.serving)
    except OSError as exc:
        log.error("cannot serve metrics on %s:%d: %s", settings.mesh.host, settings.mesh.authz_metrics_port, exc)
        reporter.stop()
        sync.stop()
        server.stop(grace=0.0)
        tokens.stop()
        install(None)
        decisions.stop()
        return 1
    try:
        next_prune = time.monotonic() + _PRUNE_SECONDS
        while not stopping.wait(1.0):
            if supervisor_pid is not None and parent_gone(supervisor_pid):
                log.error("the supervisor is gone: worker %d stops", index)
                break
            guard.check()
            if time.monotonic() >= next_prune:
                pruned = store.prune(time.time())
                if pruned:
                    log.info("dropped %d revocations of expired tokens", pruned)
                next_prune = time.monotonic() + _PRUNE_SECONDS
    finally:
        log.info("shutting down")
        stop_metrics()
        sync.stop()
        server.stop(grace=2.0)
        reporter.stop()   # after the last decision: its final report
        throttle.stop()
        tokens.stop()
        install(None)
        decisions.stop()
    return 0

