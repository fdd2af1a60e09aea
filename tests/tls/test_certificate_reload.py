"""Certificates rotated under running servers (portcullis_shared.tls_reload): after the
files are replaced, a new connection gets the new certificate and a connection opened
before keeps working, without a restart. For each listener Portcullis owns: authz_server
(both front ends), admin_api's gRPC port (admin services, PolicySync, xDS) and its REST port
(a real admin_api process: uvicorn's TLS)."""

from __future__ import annotations

import os
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc

from admin_api.app import create_admin_app
from authz_server.frontends import start_server
from authz_server.index.store import PolicyStore
from mesh.local_ca import Issued, ensure_local_ca, reissue
from portcullis_shared.settings import MeshSettings
from portcullis_shared.tls import CertKey, TlsFiles, TlsSettings
from portcullis_shared.tls_context import client_context, grpc_channel_credentials
from portcullis_shared.tls_reload import ReloadingServerContext
from tests.cli.conftest import start_admin_api


def _pair(issued: Issued) -> CertKey:
    return CertKey(issued.cert_file, issued.key_file)


def _serial(der: bytes | None) -> int:
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def _file_serial(cert_file: Path) -> int:
    return x509.load_pem_x509_certificate(cert_file.read_bytes()).serial_number


def _served_serial(port: int, ca: dict[str, Issued], *, client_certificate: bool) -> int:
    """The serial of the certificate a new connection to `port` is shown (a handshake only)."""
    context = client_context(ca["ca"].cert_file, identity=_pair(ca["client"]) if client_certificate else None,
                             alpn=("h2",))
    with socket.create_connection(("127.0.0.1", port), timeout=5.0) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return _serial(tls.getpeercert(binary_form=True))


@pytest.fixture
def ca(tmp_path: Path) -> dict[str, Issued]:
    """A local CA of the test's own: the test rotates its certificates."""
    return ensure_local_ca(tmp_path / "tls")


def _files(ca: dict[str, Issued]) -> TlsFiles:
    return TlsFiles(ca_file=ca["ca"].cert_file, admin=_pair(ca["admin"]), authz=_pair(ca["authz"]),
                    gateway=_pair(ca["gateway"]), client=_pair(ca["client"]))


def _health(channel: grpc.Channel) -> int:
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5.0).status


def _rotated_grpc_port(port: int, ca: dict[str, Issued], who: str, *, client_certificate: bool) -> None:
    directory = ca["ca"].cert_file.parent
    identity = _pair(ca["client"]) if client_certificate else None
    before = _served_serial(port, ca, client_certificate=client_certificate)
    assert before == _file_serial(ca[who].cert_file)
    with grpc.secure_channel(f"127.0.0.1:{port}", grpc_channel_credentials(ca["ca"].cert_file,
                                                                          identity=identity)) as old:
        first = _health(old)
        reissue(directory, who)
        after = _served_serial(port, ca, client_certificate=client_certificate)
        assert after == _file_serial(ca[who].cert_file) != before
        assert _health(old) == first     # the connection opened before the rotation still answers
    with grpc.secure_channel(f"127.0.0.1:{port}", grpc_channel_credentials(ca["ca"].cert_file,
                                                                          identity=identity)) as new:
        assert _health(new) == first     # and a new one verifies the new certificate


@pytest.mark.parametrize("frontend", ["native", "grpcio"])
def test_authz_server_serves_a_rotated_certificate_to_new_connections(frontend: str, ca: dict[str, Issued]) -> None:
    running = start_server(PolicyStore(), port=0, frontend=frontend, tls=_files(ca))
    try:
        _rotated_grpc_port(running.port, ca, "authz", client_certificate=True)
    finally:
        # A grace period lets the server's loop see the closed connections out (with none,
        # a socket whose peer had just gone could outlive the stopped loop, unclosed).
        running.stop(grace=1.0)


def test_admin_api_grpc_serves_a_rotated_certificate_to_new_connections(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PORTCULLIS_DATABASE_URL", raising=False)
    ca = ensure_local_ca(tmp_path / "tls")
    app = create_admin_app(MeshSettings(data_dir=tmp_path, tls=TlsSettings(mode="auto")), grpc_port=0)
    app.start()
    try:
        _rotated_grpc_port(app.grpc_port, ca, "admin", client_certificate=False)
    finally:
        app.stop()


@pytest.fixture
def rest_admin(tmp_path: Path) -> Iterator[tuple[MeshSettings, dict[str, Issued]]]:
    ca = ensure_local_ca(tmp_path / "tls")
    with start_admin_api(tmp_path, tls=TlsSettings(mode="auto")) as settings:
        yield settings, ca


def _connection_serial(response: httpx.Response) -> int:
    """The serial of the certificate shown on the connection that carried `response`."""
    ssl_object = response.extensions["network_stream"].get_extra_info("ssl_object")
    return _serial(ssl_object.getpeercert(True))   # the low-level object takes it positionally


@pytest.mark.integration
def test_admin_api_rest_serves_a_rotated_certificate_to_new_connections(
        rest_admin: tuple[MeshSettings, dict[str, Issued]]) -> None:
    settings, ca = rest_admin
    url = f"https://{settings.host}:{settings.admin_rest_port}/backend-jwt/jwks.json"
    with httpx.Client(verify=client_context(ca["ca"].cert_file), trust_env=False, timeout=5.0) as old:
        first = old.get(url)
        before = _connection_serial(first)
        assert first.status_code == 200 and before == _file_serial(ca["admin"].cert_file)
        reissue(ca["ca"].cert_file.parent, "admin")
        with httpx.Client(verify=client_context(ca["ca"].cert_file), trust_env=False, timeout=5.0) as new:
            fresh = new.get(url)
            assert fresh.status_code == 200
            assert _connection_serial(fresh) == _file_serial(ca["admin"].cert_file) != before
        kept = old.get(url)   # the keep-alive connection from before the rotation
        assert kept.status_code == 200 and _connection_serial(kept) == before


def _handshake_serial(reloading: ReloadingServerContext, ca: dict[str, Issued]) -> int:
    """One connection through a listener on `reloading.context`: the serial the client saw."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=5.0)
        accepted, _ = listener.accept()
        # wrap_socket takes each socket over: the wrapped ones are what to close.
        with client_context(ca["ca"].cert_file).wrap_socket(client, server_hostname="127.0.0.1",
                                                            do_handshake_on_connect=False) as client_tls, \
                reloading.context.wrap_socket(accepted, server_side=True, do_handshake_on_connect=False) as server_tls:
            _handshake_pair(client_tls, server_tls)
            return _serial(client_tls.getpeercert(binary_form=True))


def _handshake_pair(client: ssl.SSLSocket, server: ssl.SSLSocket) -> None:
    """Both ends' handshakes, interleaved on one thread (non-blocking sockets)."""
    client.setblocking(False)
    server.setblocking(False)
    done = {client: False, server: False}
    deadline = time.monotonic() + 5.0
    while not all(done.values()):
        assert time.monotonic() < deadline, "handshake did not finish"
        for end in (client, server):
            if done[end]:
                continue
            try:
                end.do_handshake()
                done[end] = True
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                time.sleep(0.001)


def test_a_half_rotated_pair_keeps_the_previous_certificate_until_the_key_follows(ca: dict[str, Issued]) -> None:
    reloading = ReloadingServerContext(_pair(ca["admin"]), alpn=("http/1.1",))
    before = _handshake_serial(reloading, ca)
    # A new certificate in place whose key is not there yet: it does not load, the old pair serves.
    staged = reissue(ca["ca"].cert_file.parent, "gateway")
    os.replace(staged.cert_file, ca["admin"].cert_file)
    assert _handshake_serial(reloading, ca) == before and reloading.reloads == 0
    os.replace(staged.key_file, ca["admin"].key_file)
    assert _handshake_serial(reloading, ca) == _file_serial(ca["admin"].cert_file) != before
    assert reloading.reloads == 1
