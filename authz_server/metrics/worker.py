"""A deciding process's side of the metrics: answer the supervisor over the inherited
socket pair (a worker), or serve /metrics itself (a single process, PORTCULLIS_AUTHZ_WORKERS=1)."""

from __future__ import annotations

import logging
import os
from typing import Callable

from authz_server.index.store import PolicyStore
from authz_server.metrics.channel import FD_VARIABLE, WorkerEnd
from authz_server.metrics.recorder import recorder
from authz_server.metrics.server import serve_metrics
from authz_server.metrics.snapshot import SyncView, WorkerSnapshotter
from authz_server.settings import AuthzSettings
from authz_server.sync_client import PolicySyncClient

log = logging.getLogger(__name__)


def sync_view(store: PolicyStore, sync: PolicySyncClient, serving: Callable[[], bool] = lambda: True) -> SyncView:
    return SyncView(
        revision=lambda: store.revision,
        ready=lambda: store.ready,
        staleness_seconds=sync.staleness_seconds,
        connected=lambda: sync.connected,
        reconnects=lambda: max(0, sync.connections - 1),
        snapshot_seconds=lambda: sync.snapshot_seconds,
        serving=serving,
    )


def start_worker_metrics(settings: AuthzSettings, store: PolicyStore, sync: PolicySyncClient,
                         worker_index: int | None, serving: Callable[[], bool] = lambda: True) -> Callable[[], None]:
    """Start what this process does for the metrics; returns how to stop it."""
    recorder.enabled = settings.metrics
    if not settings.metrics:
        return lambda: None
    snapshotter = WorkerSnapshotter(recorder, lambda: store.current, sync_view(store, sync, serving),
                                    worker=worker_index or 0)
    fd = os.environ.get(FD_VARIABLE, "")
    if worker_index is not None and fd.isdigit():
        WorkerEnd.from_fd(int(fd), snapshotter.snapshot).start()
        return lambda: None
    server = serve_metrics(settings.mesh.host, settings.mesh.authz_metrics_port,
                           lambda: [(worker_index or 0, snapshotter.snapshot())], max_apis=settings.metrics_max_apis)
    return server.stop
