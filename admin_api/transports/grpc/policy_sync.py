"""The PolicySync gRPC servicer: authenticates the replica, then streams `watch`; and
takes each replica process's usage counts (ReportUsage)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import grpc

from admin_api.access.auth import metadata_token
from admin_api.dispatch import Dispatcher
from admin_api.errors import AdminError
from admin_api.metrics import WATCH_STREAMS
from admin_api.services import usage
from admin_api.sync.watch import WatchConfig, watch
from portcullis.sync.v1 import sync_pb2, sync_pb2_grpc
from portcullis_shared.tls import is_loopback

log = logging.getLogger(__name__)


def carries_secrets_safely(context: grpc.ServicerContext) -> bool:
    """The call came inside TLS, or from a loopback peer (`ipv4:127.0.0.1:port`, `ipv6:[::1]:port`,
    `unix:...`)."""
    if context.auth_context().get("transport_security_type") == [b"ssl"]:
        return True
    peer = context.peer()
    kind, _, address = peer.partition(":")
    if kind == "unix":
        return True
    if kind in ("ipv4", "ipv6"):
        host = address.rpartition(":")[0].strip("[]")
        return is_loopback(host)
    return False


class PolicySyncServicer(sync_pb2_grpc.PolicySyncServicer):
    def __init__(self, dispatcher: Dispatcher, stopping: threading.Event, config: WatchConfig) -> None:
        self._dispatcher = dispatcher
        self._stopping = stopping
        self._config = config

    def Watch(self, request: sync_pb2.WatchRequest,  # noqa: N802 - gRPC method name
              context: grpc.ServicerContext) -> Iterator[sync_pb2.WatchEvent]:
        try:
            caller = self._dispatcher.authenticate_sync(metadata_token(context.invocation_metadata()))
        except AdminError as exc:
            context.abort(exc.grpc_code, exc.message)
        if not carries_secrets_safely(context):
            # The stream holds backend-JWT private keys and key-manager secrets.
            log.warning("watch refused: plaintext from a non-loopback peer %s", context.peer())
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          "PolicySync carries private signing keys: only inside TLS or over loopback "
                          "(serve admin_api with PORTCULLIS_TLS)")
        if request.from_revision < 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "from_revision must be 0 or more")
        store = self._dispatcher.store
        context.add_callback(store.notifier.wake)  # a cancelled client stops waiting at once
        replica = request.replica[:200] or "unnamed"
        log.info("watch started replica=%r subject=%s from_revision=%d", replica, caller.subject,
                 request.from_revision)
        WATCH_STREAMS.opened()
        try:
            yield from watch(store, request.from_revision, config=self._config,
                             active=lambda: context.is_active() and not self._stopping.is_set())
        except Exception:
            # The replica reconnects and resumes; it must not see our internals.
            log.exception("watch failed replica=%r", replica)
            context.abort(grpc.StatusCode.INTERNAL, "internal error")
        finally:
            WATCH_STREAMS.closed()
            log.info("watch ended replica=%r", replica)

    def ReportUsage(self, request: sync_pb2.UsageReport,  # noqa: N802 - gRPC method name
                    context: grpc.ServicerContext) -> sync_pb2.UsageReportAck:
        """An authz_server process's usage counts (admin_api.services.usage)."""
        try:
            self._dispatcher.authenticate_sync(metadata_token(context.invocation_metadata()))
        except AdminError as exc:
            context.abort(exc.grpc_code, exc.message)
        if not carries_secrets_safely(context):
            # The sync token would travel in clear: refused like Watch.
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          "PolicySync takes the sync token only inside TLS or over loopback")
        try:
            usage.record_report(self._dispatcher.store, request)
        except AdminError as exc:
            context.abort(exc.grpc_code, exc.message)
        return sync_pb2.UsageReportAck()
