"""The gRPC server: ext_authz Check and grpc health (SERVING once policy is ready), on the
native front end (authz_server.h2grpc) or grpcio's server (which adds reflection)."""

from __future__ import annotations

import logging
import ssl
import threading
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import grpc
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from authz_server.throttle.limiter import Throttle
from authz_server import offload
from authz_server.backend_jwt.issuer import BackendJwtIssuer
from authz_server.check_servicer import AuthorizationService
from authz_server.h2grpc.connection import Limits
from authz_server.explain.handler import EXPLAIN_PATH, ExplainHandler
from authz_server.h2grpc.grpc_wire import GrpcError, StatusCode
from authz_server.h2grpc.offload_hook import OffloadHook
from authz_server.h2grpc.server import H2GrpcServer
from authz_server.index.store import PolicyStore
from authz_server.key_managers.services import TokenServices
from authz_server.metrics.recorder import recorder
from authz_server.settings import FRONTENDS, H2Settings
from portcullis_shared.tls import TlsFiles
from portcullis_shared.tls_reload import ReloadingServerContext, reloading_grpc_credentials
from authz_server.upb import ProtobufBackendError, require_upb  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

AUTHORIZATION_SERVICE = external_auth_pb2.DESCRIPTOR.services_by_name["Authorization"].full_name


CHECK_PATH = f"/{AUTHORIZATION_SERVICE}/Check"
HEALTH_CHECK_PATH = "/grpc.health.v1.Health/Check"


# Decisions that would wait on a key manager move from the loop to the pool (authz_server.offload).
DECISION_OFFLOAD = OffloadHook(inline=offload.inline, would_block=offload.WouldBlock,
                               counted=lambda refused: recorder.offload(refused=refused))


class RunningServer(Protocol):
    port: int

    def stop(self, grace: float | None = 2.0) -> None: ...


class HealthStatus:
    """NOT_SERVING until the first policy snapshot is in, then SERVING (both front ends);
    NOT_SERVING again while the policy is staler than allowed (`set_stale`), so that Envoy's
    health checks prefer a fresher replica. Decisions go on either way (fail static)."""

    NAMES = ("", AUTHORIZATION_SERVICE)

    def __init__(self) -> None:
        self._statuses = {name: health_pb2.HealthCheckResponse.NOT_SERVING for name in self.NAMES}
        self._listeners: list[Callable[[str, int], None]] = []
        self._ready = False
        self._stale = False
        self._lock = threading.Lock()

    def follow(self, listener: Callable[[str, int], None]) -> None:
        self._listeners.append(listener)
        for name, status in self._statuses.items():
            listener(name, status)

    @property
    def serving(self) -> bool:
        return self._statuses[""] == health_pb2.HealthCheckResponse.SERVING

    def set_serving(self) -> None:
        with self._lock:
            self._ready = True
            self._publish()
        log.info("policy ready: health is SERVING")

    def set_stale(self, stale: bool) -> None:
        with self._lock:
            self._stale = stale
            self._publish()

    def _publish(self) -> None:
        serving = self._ready and not self._stale
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in self.NAMES:
            if self._statuses[name] == status:
                continue
            self._statuses[name] = status
            for listener in self._listeners:
                listener(name, status)

    def get(self, name: str) -> int | None:
        return self._statuses.get(name)


def _bytes_handler(path: str, handler: Callable[[bytes], bytes]) -> grpc.GenericRpcHandler:
    """A native-style handler (bytes in, bytes out, GrpcError) on grpcio's server."""
    service_name, _, method = path.strip("/").partition("/")

    def unary(message: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            return handler(message)
        except GrpcError as error:
            context.abort(getattr(grpc.StatusCode, error.code.name), error.message)
            raise

    return grpc.method_handlers_generic_handler(service_name, {method: grpc.unary_unary_rpc_method_handler(unary)})


@dataclass
class GrpcioServer:
    server: grpc.Server
    port: int
    health: health.HealthServicer

    def stop(self, grace: float | None = 2.0) -> None:
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()


def native_limits(h2: H2Settings, max_concurrent_rpcs: int | None) -> Limits:
    """The native front end's limits from authz_server's settings."""
    return Limits(max_concurrent_streams=max_concurrent_rpcs or 1000,
                  max_header_block_bytes=h2.max_header_block_bytes, max_header_block_frames=h2.max_header_block_frames,
                  max_early_resets=h2.max_early_resets, max_control_frames=h2.max_control_frames,
                  preface_timeout=h2.preface_timeout_seconds, settings_timeout=h2.settings_timeout_seconds,
                  request_timeout=h2.request_timeout_seconds, idle_timeout=h2.idle_timeout_seconds,
                  max_connections=h2.max_connections, max_worker_held_bytes=h2.max_worker_held_bytes)


@dataclass(frozen=True)
class UnixSocket:
    """Where the native front end also listens (PORTCULLIS_AUTHZ_UNIX_SOCKET), and its mode."""

    path: Path
    mode: str = "0600"


@dataclass
class NativeServer:
    server: H2GrpcServer
    port: int

    def stop(self, grace: float | None = 2.0) -> None:
        self.server.stop(grace or 0.0)


def start_server(
    store: PolicyStore,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    trusted_hops: int = 0,
    workers: int = 4,
    max_concurrent_rpcs: int | None = None,
    service: AuthorizationService | None = None,
    tokens: TokenServices | None = None,
    backend_jwt: BackendJwtIssuer | None = None,
    throttle: Throttle | None = None,
    frontend: str = "native",
    health: HealthStatus | None = None,
    explain_token: Callable[[], str | None] | None = None,
    replica: str = "authz_server",
    tls: TlsFiles | None = None,
    h2: H2Settings | None = None,
    unix_socket: UnixSocket | None = None,
    event_loop: str = "uvloop",
) -> RunningServer:
    """Start serving on host:port (0: any free port); the result knows the bound port.

    `frontend` "native" (authz_server.h2grpc) decides on one event-loop thread and moves
    only the calls that wait on a key manager to a pool of `workers` threads; "grpcio"
    is grpcio's server with a pool of `workers` threads, reflection and streaming health.
    `max_concurrent_rpcs` bounds what may wait: past it a call is refused at once with
    RESOURCE_EXHAUSTED (Envoy fails closed) rather than answered after Envoy gave up.
    `explain_token` (the sync token) also serves decision explain, for that token only.
    `tls`: serve TLS with the AUTHZ certificate and require a client certificate from the
    CA (Envoy's and admin_api's: PORTCULLIS_TLS_CLIENT_*); None: h2c.
    `h2`: the native front end's bounds on abusive peers (their defaults when None).
    `unix_socket`: the native front end also serves h2c there (for an Envoy on this host).
    `event_loop`: the native front end's loop, "uvloop" or "asyncio" (h2grpc.server)."""
    if frontend not in FRONTENDS:
        raise ValueError(f"frontend must be one of {FRONTENDS}, not {frontend!r}")
    if unix_socket is not None and frontend != "native":
        raise ValueError("a Unix socket is served by the native front end only")
    service = service or AuthorizationService(store, trusted_hops=trusted_hops, tokens=tokens, backend_jwt=backend_jwt,
                                              throttle=throttle)
    status = health or HealthStatus()
    store.on_ready(status.set_serving)
    extra = {EXPLAIN_PATH: ExplainHandler(service, explain_token, replica)} if explain_token is not None else {}
    if frontend == "native":
        # Rotated certificate files apply to new connections (portcullis_shared.tls_reload).
        context = None if tls is None else ReloadingServerContext(tls.require("authz"), client_ca=tls.ca_file,
                                                                  what="authz_server").context
        return _start_native(service, status, host, port, workers, max_concurrent_rpcs, extra, context,
                             h2 or H2Settings(), unix_socket, event_loop)
    credentials = None if tls is None else reloading_grpc_credentials(tls.require("authz"), client_ca=tls.ca_file,
                                                                      what="authz_server")
    return _start_grpcio(service, status, host, port, workers, max_concurrent_rpcs, extra, credentials)


def check_handler(service: AuthorizationService) -> Callable[[bytes], bytes]:
    """The native front end's Check: CheckRequest bytes in, CheckResponse bytes out."""
    def check(message: bytes) -> bytes:
        try:
            request = external_auth_pb2.CheckRequest.FromString(message)
        except DecodeError:
            raise GrpcError(StatusCode.INVALID_ARGUMENT, "the message is not an envoy.service.auth.v3.CheckRequest") from None
        return service.check_encoded(request)

    return check


def _start_native(service: AuthorizationService, status: HealthStatus, host: str, port: int,
                  workers: int, max_concurrent_rpcs: int | None,
                  extra: dict[str, Callable[[bytes], bytes]], context: ssl.SSLContext | None,
                  h2: H2Settings, unix_socket: UnixSocket | None = None, event_loop: str = "uvloop") -> NativeServer:
    limits = native_limits(h2, max_concurrent_rpcs)
    check = check_handler(service)

    def health_check(message: bytes) -> bytes:
        try:
            request = health_pb2.HealthCheckRequest.FromString(message)
        except DecodeError:
            raise GrpcError(StatusCode.INVALID_ARGUMENT, "the message is not a grpc.health.v1.HealthCheckRequest") from None
        current = status.get(request.service)
        if current is None:
            raise GrpcError(StatusCode.NOT_FOUND, f"unknown service {request.service[:200]!r}")
        return health_pb2.HealthCheckResponse(status=current).SerializeToString()

    server = H2GrpcServer({CHECK_PATH: check, HEALTH_CHECK_PATH: health_check, **extra}, host=host, port=port,
                          limits=limits, blocking_threads=workers, max_offloaded=limits.max_concurrent_streams,
                          offload_hook=DECISION_OFFLOAD, ssl_context=context,
                          unix_path=None if unix_socket is None else unix_socket.path,
                          unix_mode="0600" if unix_socket is None else unix_socket.mode, event_loop=event_loop)
    bound = server.start()
    log.info("authz_server listening on %s:%d (native gRPC front end on %s, %s)%s", host, bound, event_loop,
             "h2c" if context is None else "TLS, client certificate required",
             "" if unix_socket is None else f" and on {unix_socket.path} (h2c, mode {unix_socket.mode})")
    return NativeServer(server=server, port=bound)


def _start_grpcio(service: AuthorizationService, status: HealthStatus, host: str, port: int,
                  workers: int, max_concurrent_rpcs: int | None,
                  extra: dict[str, Callable[[bytes], bytes]],
                  credentials: grpc.ServerCredentials | None) -> GrpcioServer:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="authz"),
        maximum_concurrent_rpcs=max_concurrent_rpcs,
        # SO_REUSEPORT off: each worker process owns its own port; a second process on
        # the same port must fail loudly, not silently share the connections.
        options=(("grpc.so_reuseport", 0),),
    )
    external_auth_pb2_grpc.add_AuthorizationServicer_to_server(service, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    server.add_generic_rpc_handlers([_bytes_handler(path, handler) for path, handler in extra.items()])
    status.follow(health_servicer.set)
    reflection.enable_server_reflection(
        (AUTHORIZATION_SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    address = f"{host}:{port}"
    bound = server.add_insecure_port(address) if credentials is None else server.add_secure_port(address, credentials)
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port}")
    server.start()
    log.info("authz_server listening on %s:%d (grpcio front end)", host, bound)
    return GrpcioServer(server=server, port=bound, health=health_servicer)
