"""The gRPC server: ext_authz Check, grpc health (SERVING once policy is ready), reflection."""

from __future__ import annotations

import logging
from concurrent import futures
from dataclasses import dataclass

import grpc
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from google.protobuf.internal import api_implementation
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from authz_server.backend_jwt.issuer import BackendJwtIssuer
from authz_server.index.store import PolicyStore
from authz_server.service import AuthorizationService
from authz_server.tokens.services import TokenServices

log = logging.getLogger(__name__)

AUTHORIZATION_SERVICE = external_auth_pb2.DESCRIPTOR.services_by_name["Authorization"].full_name


class ProtobufBackendError(RuntimeError):
    pass


def require_upb() -> None:
    """The pure-Python protobuf backend is ~10x slower per Check; refuse to run on it."""
    backend = api_implementation.Type()
    if backend != "upb":
        raise ProtobufBackendError(
            f"authz_server needs the upb protobuf backend, but this interpreter uses {backend!r}. "
            "Unset PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION and install the protobuf wheel for this platform."
        )


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    health: health.HealthServicer

    def stop(self, grace: float | None = 2.0) -> None:
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()


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
) -> RunningServer:
    """Start serving on host:port (0: any free port) and return the bound port.

    `workers` is the thread pool: a decision holds the GIL almost all the time, so more
    threads only add switching; a few cover the rare wait on a JWKS or introspection call.
    `max_concurrent_rpcs` bounds what is queued: past it a call is refused at once with
    RESOURCE_EXHAUSTED (Envoy fails closed) rather than answered after Envoy gave up."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="authz"),
        maximum_concurrent_rpcs=max_concurrent_rpcs,
        # SO_REUSEPORT off: each worker process owns its own port; a second process on
        # the same port must fail loudly, not silently share the connections.
        options=(("grpc.so_reuseport", 0),),
    )
    external_auth_pb2_grpc.add_AuthorizationServicer_to_server(
        service or AuthorizationService(store, trusted_hops=trusted_hops, tokens=tokens, backend_jwt=backend_jwt),
        server,
    )
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", AUTHORIZATION_SERVICE):
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)

    def mark_serving() -> None:
        for name in ("", AUTHORIZATION_SERVICE):
            health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("policy ready: health is SERVING")

    store.on_ready(mark_serving)
    reflection.enable_server_reflection(
        (AUTHORIZATION_SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port}")
    server.start()
    log.info("authz_server listening on %s:%d", host, bound)
    return RunningServer(server=server, port=bound, health=health_servicer)
