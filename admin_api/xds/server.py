"""The Aggregated Discovery Service over gRPC (state of the world), served by admin_api's
gRPC server beside the admin services.

Every stream must carry the gateway credential (`authorization: Bearer <token>` in its
initial metadata, the `gateway-token` file); without it the stream is refused with
UNAUTHENTICATED before any configuration is sent. A thread per stream reads Envoy's
requests into the stream's inbox; snapshot changes land in the same inbox, so one loop
answers both in order.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator

import grpc
from envoy.service.discovery.v3 import discovery_pb2

from admin_api.access.auth import caller_for, metadata_token
from admin_api.access.caller import Role
from admin_api.errors import AdminError
from admin_api.store.unit_of_work import Store
from admin_api.xds.gateways import GatewayRegistry
from admin_api.xds.session import AdsSession
from admin_api.xds.state import XdsState

log = logging.getLogger(__name__)

SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"
_CHANGED = object()
_ENDED = object()
_IDLE_CHECK_SECONDS = 1.0


class AdsServicer:
    def __init__(self, store: Store, state: XdsState, registry: GatewayRegistry, stopping: threading.Event) -> None:
        self._store = store
        self._state = state
        self._registry = registry
        self._stopping = stopping
        self._lock = threading.Lock()
        self._inboxes: set[queue.SimpleQueue] = set()

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(SERVICE, {
            "StreamAggregatedResources": grpc.stream_stream_rpc_method_handler(
                self.stream,
                request_deserializer=discovery_pb2.DiscoveryRequest.FromString,
                # Responses are serialized once per version and shared (see resources).
                response_serializer=lambda payload: payload,
            ),
        })

    def close(self) -> None:
        """End every stream (server shutdown); Envoy reconnects to another replica or later."""
        with self._lock:
            inboxes = list(self._inboxes)
        for inbox in inboxes:
            inbox.put(_ENDED)

    def stream(self, requests: Iterator[discovery_pb2.DiscoveryRequest],
               context: grpc.ServicerContext) -> Iterator[bytes]:
        try:
            caller_for(self._store, metadata_token(context.invocation_metadata()), role=Role.GATEWAY)
        except AdminError as exc:
            log.warning("xDS: stream from %s refused: %s", context.peer(), exc.message)
            context.abort(exc.grpc_code, exc.message)
        inbox: queue.SimpleQueue = queue.SimpleQueue()
        session = AdsSession(self._registry, context.peer())
        reader = threading.Thread(target=_read_into, args=(requests, inbox), name="xds-reader", daemon=True)
        unsubscribe = self._state.subscribe(lambda: inbox.put(_CHANGED))
        with self._lock:
            self._inboxes.add(inbox)
        context.add_callback(lambda: inbox.put(_ENDED))
        reader.start()
        try:
            yield from self._serve(session, inbox, context.is_active)
        finally:
            unsubscribe()
            with self._lock:
                self._inboxes.discard(inbox)
            session.close()

    def _serve(self, session: AdsSession, inbox: queue.SimpleQueue, active: Callable[[], bool]) -> Iterator[bytes]:
        while active() and not self._stopping.is_set():
            try:
                items = [inbox.get(timeout=_IDLE_CHECK_SECONDS)]
            except queue.Empty:
                continue
            while True:  # take everything that is waiting: one answer for a burst
                try:
                    items.append(inbox.get_nowait())
                except queue.Empty:
                    break
            if any(item is _ENDED for item in items):
                return
            for item in items:
                if isinstance(item, discovery_pb2.DiscoveryRequest):
                    session.receive(item)
            yield from session.due(self._state.current)


def _read_into(requests: Iterator[discovery_pb2.DiscoveryRequest], inbox: queue.SimpleQueue) -> None:
    try:
        for request in requests:
            inbox.put(request)
    except Exception:  # the stream ended or broke: either way the serving loop stops
        pass
    finally:
        inbox.put(_ENDED)
