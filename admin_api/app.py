"""Wires admin_api together: settings → database and migrations → bootstrap → gRPC server.

`create_admin_app(settings)` builds everything (tests use it too); `AdminApp.start()`
serves gRPC; the REST server runs on top of `app.dispatcher` (see __main__).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from contextlib import contextmanager
from typing import Callable, Iterator, TextIO

from prometheus_client import CollectorRegistry
from sqlalchemy import func, select

from admin_api import bootstrap
from admin_api.metrics import registry_for
from admin_api.replicas import ReplicaExplainer
from admin_api.store.outbox import current_revision
from admin_api.backend_jwt.keys import BackendSigningKeys
from admin_api.crypto.kek import load_kek
from admin_api.oauth.signing_keys import SigningKeys
from admin_api.db.engine import Database, open_database
from admin_api.dispatch import Dispatcher
from admin_api.transports.grpc.server import AdminGrpcServer
from admin_api.migrations import upgrade
from admin_api.services import organizations, path_ownership
from admin_api.config import ServiceConfig
from admin_api.store.unit_of_work import Store
from admin_api.store.listener import ChangeListener
from admin_api.store.notifier import ChangeNotifier
from admin_api.sync.pruning import ChangeLogPruner
from admin_api.sync.watch import WatchConfig
from admin_api.xds.metrics import gateway_gauges
from admin_api.xds.runtime import XdsConfig, XdsRuntime
from portcullis_shared.private_files import private_directory
from portcullis_shared.settings import MeshSettings
from portcullis_shared.tls_context import grpc_channel_credentials
from portcullis_shared.tls_reload import reloading_grpc_credentials

log = logging.getLogger(__name__)

# PostgreSQL advisory lock (session level) held while a replica migrates and bootstraps
# (default organization, resident key managers and their signing keys, the bootstrap
# credentials, the backend-JWT key): replicas starting at once on an empty database take
# turns, so each step happens once and none trips over another's half-made schema.
BOOTSTRAP_LOCK_KEY = 0x706F7274_626F6F74   # "portboot"


@dataclass
class AdminApp:
    settings: MeshSettings
    db: Database
    store: Store
    dispatcher: Dispatcher
    grpc_server: AdminGrpcServer
    pruner: ChangeLogPruner
    xds: XdsRuntime
    listener: ChangeListener | None = None     # PostgreSQL: commits of the other replicas

    @property
    def grpc_port(self) -> int:
        return self.grpc_server.port

    def check_database(self) -> None:
        """Raises when the database does not answer (admin_api's readiness): a read of the
        revision counter, so that a reachable server without admin_api's tables fails too."""
        with self.store.read() as session:
            current_revision(session)

    def change_log_revision(self) -> int:
        with self.store.read() as session:
            return current_revision(session)

    def metrics_registry(self) -> CollectorRegistry:
        """What GET /metrics serves for this app (see admin_api.metrics)."""
        return registry_for(self.change_log_revision, extra=lambda: gateway_gauges(self.xds.registry))

    def start(self) -> None:
        if self.listener is not None:
            self.listener.start()
        self.grpc_server.start()
        self.pruner.start()
        log.info("admin gRPC listening on %s:%d (%s)", self.settings.bind_host, self.grpc_port,
                 "TLS" if self.settings.tls.enabled else "plaintext")

    def stop(self) -> None:
        self.pruner.stop()
        self.grpc_server.stop()
        if self.listener is not None:
            self.listener.stop()
        if self.store.config.explainer is not None:
            self.store.config.explainer.close()
        self.db.dispose()
        log.info("admin gRPC stopped")


@contextmanager
def bootstrap_lock(db: Database) -> Iterator[None]:
    """Held around a start's migrations and first writes; on SQLite its own write lock
    (BEGIN IMMEDIATE) already serializes them, so nothing is taken."""
    if db.is_sqlite:
        yield
        return
    with db.engine.connect() as connection:
        connection.execute(select(func.pg_advisory_lock(BOOTSTRAP_LOCK_KEY)))
        connection.commit()     # the lock is the session's: it outlives this transaction
        try:
            yield
        finally:
            connection.execute(select(func.pg_advisory_unlock(BOOTSTRAP_LOCK_KEY)))
            connection.commit()


def open_store(database_url: str, config: ServiceConfig | None = None, *,
               bootstrap_with: Callable[[Store], None] | None = None) -> Store:
    """A migrated database with the default organization and every organization's
    resident key manager, ready for the services; `bootstrap_with` runs in the same
    turn under the bootstrap lock (see BOOTSTRAP_LOCK_KEY)."""
    db = open_database(database_url)
    with bootstrap_lock(db):
        upgrade(db.engine)
        store = Store(db, ChangeNotifier(), config)
        organizations.ensure_default(store)
        bootstrap.ensure_resident_key_managers(store)
        if bootstrap_with is not None:
            bootstrap_with(store)
    return store


def announce_admin_token(token: str, path: Path, stream: TextIO) -> None:
    """Say where the new bootstrap admin token is; the token itself only to a terminal, so
    that it never lands in a log file (`make run > log`, a service manager's journal)."""
    if stream.isatty():
        print(f"admin_api: bootstrap admin token (also in {path}, mode 0600): {token}", file=stream, flush=True)
    else:
        print(f"admin_api: bootstrap admin token created in {path} (mode 0600)", file=stream, flush=True)


def _report_path_conflicts(store: Store) -> None:
    """Base paths accepted before the path-ownership rule that break it (see
    services/path_ownership.py): said at every start until their owners move them."""
    with store.read() as session:
        for line in path_ownership.report_of(session):
            log.warning("path ownership: %s", line)


def create_admin_app(settings: MeshSettings, *, grpc_port: int | None = None,
                     watch_config: WatchConfig | None = None, xds_config: XdsConfig | None = None) -> AdminApp:
    """Everything but the REST server; `grpc_port=0` picks a free port (tests)."""
    private_directory(settings.data_dir)
    tls = settings.tls_files
    explainer = ReplicaExplainer(settings.authz_explain_target, settings.sync_token_file,
                                 None if tls is None else grpc_channel_credentials(tls.ca_file, identity=tls.require("client")))
    made: list[bootstrap.CreatedTokens] = []

    def first_writes(store: Store) -> None:
        made.append(bootstrap.ensure_credentials(store, settings.admin_token_file, settings.sync_token_file,
                                                 settings.gateway_token_file))
        # Backend JWTs sign with ES256 unless an API asks otherwise: its key exists from the start.
        BackendSigningKeys(store, store.config.require_kek()).ensure_active()
        # So does the resident key manager's (made here, in turn, rather than by each
        # replica's REST app at once: two replicas would each make one).
        SigningKeys(store, store.config.require_kek()).ensure_active()

    store = open_store(settings.database_url, ServiceConfig.from_settings(settings, load_kek(settings), explainer),
                       bootstrap_with=first_writes)
    created = made[0]
    _report_path_conflicts(store)
    if created.admin_token is not None:
        announce_admin_token(created.admin_token, settings.admin_token_file, sys.stderr)
    dispatcher = Dispatcher(store)
    watch_config = watch_config or WatchConfig(heartbeat_interval=settings.sync_heartbeat_seconds)
    port = settings.admin_grpc_port if grpc_port is None else grpc_port
    xds = XdsRuntime(store, xds_config or XdsConfig.from_settings(settings))
    # Admin services, PolicySync and xDS; rotated certificate files apply to new connections.
    credentials = None if tls is None else reloading_grpc_credentials(tls.require("admin"), what="admin_api gRPC")
    server = AdminGrpcServer(dispatcher, f"{settings.bind_host}:{port}", watch_config, xds, credentials)
    pruner = ChangeLogPruner(store, timedelta(hours=settings.change_log_retention_hours))
    listener = None if store.db.is_sqlite else ChangeListener(store.db.engine, store.notifier)
    return AdminApp(settings=settings, db=store.db, store=store, dispatcher=dispatcher, grpc_server=server,
                    pruner=pruner, xds=xds, listener=listener)
