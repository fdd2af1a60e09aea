"""authz_server's gRPC port with TLS (both front ends): it answers only a client that
presents a certificate from the mesh's CA (Envoy's, admin_api's), over TLS, with ALPN h2."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from authz_server.frontends import RunningServer, start_server
from authz_server.index.store import PolicyStore
from mesh.local_ca import Issued
from portcullis_shared.tls import CertKey, TlsFiles
from portcullis_shared.tls_context import client_context, grpc_channel_credentials


def _pair(issued: Issued) -> CertKey:
    return CertKey(issued.cert_file, issued.key_file)


def _files(ca: dict[str, Issued]) -> TlsFiles:
    return TlsFiles(ca_file=ca["ca"].cert_file, admin=_pair(ca["admin"]), authz=_pair(ca["authz"]),
                    gateway=_pair(ca["gateway"]), client=_pair(ca["client"]))


@pytest.fixture(params=["native", "grpcio"])
def server(request: pytest.FixtureRequest, local_ca: dict[str, Issued]) -> Iterator[RunningServer]:
    running = start_server(PolicyStore(), port=0, frontend=request.param, tls=_files(local_ca))
    yield running
    running.stop(grace=0.0)


def _health(port: int, credentials: grpc.ChannelCredentials) -> int:
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5.0)
    return answer.status


def test_answers_a_client_with_a_certificate_of_the_ca(server: RunningServer, local_ca: dict[str, Issued]) -> None:
    credentials = grpc_channel_credentials(local_ca["ca"].cert_file, identity=_pair(local_ca["client"]))
    assert _health(server.port, credentials) == health_pb2.HealthCheckResponse.NOT_SERVING  # no policy yet


def test_refuses_a_client_without_a_certificate(server: RunningServer, local_ca: dict[str, Issued]) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        _health(server.port, grpc_channel_credentials(local_ca["ca"].cert_file))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_refuses_a_client_certificate_of_another_ca(server: RunningServer, local_ca: dict[str, Issued],
                                                     other_ca: dict[str, Issued]) -> None:
    stranger = grpc_channel_credentials(local_ca["ca"].cert_file, identity=_pair(other_ca["client"]))
    with pytest.raises(grpc.RpcError) as refused:
        _health(server.port, stranger)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_client_that_trusts_another_ca_does_not_talk_to_it(server: RunningServer, local_ca: dict[str, Issued],
                                                             other_ca: dict[str, Issued]) -> None:
    credentials = grpc_channel_credentials(other_ca["ca"].cert_file, identity=_pair(local_ca["client"]))
    with pytest.raises(grpc.RpcError) as refused:
        _health(server.port, credentials)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_plaintext_h2c_gets_no_answer(server: RunningServer) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        with pytest.raises(grpc.RpcError) as refused:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2.0)
    assert refused.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def test_negotiates_h2_by_alpn(server: RunningServer, local_ca: dict[str, Issued]) -> None:
    context = client_context(local_ca["ca"].cert_file, identity=_pair(local_ca["client"]), alpn=("h2", "http/1.1"))
    with socket.create_connection(("127.0.0.1", server.port), timeout=5.0) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.selected_alpn_protocol() == "h2"
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_the_server_certificate_is_checked_against_the_address_dialled(local_ca: dict[str, Issued],
                                                                       tmp_path: Path) -> None:
    # The local certificates name 127.0.0.1, ::1 and localhost: another name is refused.
    context = client_context(local_ca["ca"].cert_file, identity=_pair(local_ca["client"]))
    running = start_server(PolicyStore(), port=0, tls=_files(local_ca))
    try:
        with socket.create_connection(("127.0.0.1", running.port), timeout=5.0) as raw:
            with pytest.raises(ssl.SSLCertVerificationError):
                context.wrap_socket(raw, server_hostname="authz.example")
    finally:
        running.stop(grace=0.0)
