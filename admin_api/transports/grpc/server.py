"""The admin gRPC server: every admin RPC (generic handlers built from the service
descriptors, all calling the Dispatcher), PolicySync.Watch, health and reflection.

Every RPC except health and reflection needs `authorization: Bearer <token>` metadata.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent import futures

import grpc
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from admin_api.access.auth import metadata_token
from admin_api.dispatch import Dispatcher
from admin_api.errors import AdminError
from admin_api.transports.grpc.parsing import Unparseable, lenient_parser, require_known
from admin_api.transports.grpc.policy_sync import PolicySyncServicer
from admin_api.sync.watch import WatchConfig
from admin_api.schema import admin_services
from admin_api.xds.runtime import XdsRuntime
from portcullis.sync.v1 import sync_pb2, sync_pb2_grpc

log = logging.getLogger(__name__)

# Every streaming call holds a thread for its whole life: the Watch streams of the
# authz_server workers and the xDS streams of the Envoys, beside the unary admin calls.
MAX_WORKERS = 64
# Replicas ping every 20 s (authz_server.sync_client.CHANNEL_OPTIONS) even while a Watch
# stream carries no data; accept a ping every 10 s so that none counts as a strike and
# the server never answers GOAWAY too_many_pings.
SERVER_OPTIONS = (
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    # Our own pings find replicas that vanished without closing their streams.
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
)


def _unary_behavior(dispatcher: Dispatcher, full_name: str) -> Callable[[Message | Unparseable, grpc.ServicerContext], Message]:
    def behavior(request: Message | Unparseable, context: grpc.ServicerContext) -> Message:
        try:
            caller = dispatcher.authenticate(metadata_token(context.invocation_metadata()))
            return dispatcher.call(full_name, require_known(request), caller)
        except AdminError as exc:
            context.abort(exc.grpc_code, exc.message)
        except Exception:
            log.exception("internal error in %s", full_name)
            context.abort(grpc.StatusCode.INTERNAL, "internal error")
        raise AssertionError("unreachable: context.abort raises")

    return behavior


def _handler(dispatcher: Dispatcher, full_name: str, method: MethodDescriptor) -> grpc.RpcMethodHandler:
    request_class = GetMessageClass(method.input_type)
    response_class = GetMessageClass(method.output_type)
    return grpc.unary_unary_rpc_method_handler(
        _unary_behavior(dispatcher, full_name),
        request_deserializer=lenient_parser(request_class),
        response_serializer=response_class.SerializeToString,
    )


def admin_handlers(dispatcher: Dispatcher) -> list[grpc.GenericRpcHandler]:
    handlers = []
    for service in admin_services():
        methods = {method.name: _handler(dispatcher, f"{service.full_name}/{method.name}", method)
                   for method in service.methods}
        handlers.append(grpc.method_handlers_generic_handler(service.full_name, methods))
    return handlers


class AdminGrpcServer:
    """Owns the grpc.Server; `stop()` ends Watch streams cleanly, then stops the server."""

    def __init__(self, dispatcher: Dispatcher, address: str, watch_config: WatchConfig = WatchConfig(),
                 xds: XdsRuntime | None = None, credentials: grpc.ServerCredentials | None = None) -> None:
        """`credentials`: TLS (portcullis_shared.tls_context); None serves plaintext h2c."""
        self._dispatcher = dispatcher
        self._xds = xds
        self._stopping = threading.Event()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="admin-grpc"),
                                   options=SERVER_OPTIONS)
        self._server.add_generic_rpc_handlers(tuple(admin_handlers(dispatcher)))
        if xds is not None:
            self._server.add_generic_rpc_handlers((xds.handler(),))
        sync_pb2_grpc.add_PolicySyncServicer_to_server(
            PolicySyncServicer(dispatcher, self._stopping, watch_config), self._server)
        self._health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        service_names = [s.full_name for s in admin_services()]
        service_names += [s.full_name for s in sync_pb2.DESCRIPTOR.services_by_name.values()]
        reflection.enable_server_reflection(
            (*service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            self._server)
        self._service_names = service_names
        self.port = (self._server.add_insecure_port(address) if credentials is None
                     else self._server.add_secure_port(address, credentials))
        if self.port == 0:
            raise OSError(f"cannot listen on {address}")

    def start(self) -> None:
        if self._xds is not None:
            self._xds.start()  # the first snapshot exists before any Envoy can ask
        self._server.start()
        for name in ("", *self._service_names):
            self._health.set(name, health_pb2.HealthCheckResponse.SERVING)

    def stop(self, grace: float = 2.0) -> None:
        self._health.enter_graceful_shutdown()
        self._stopping.set()
        if self._xds is not None:
            self._xds.stop()
        self._dispatcher.store.notifier.close()
        self._server.stop(grace).wait()
