"""admin_api's gRPC port with TLS: authz_server's Watch verifies admin_api's certificate
and gets its policy; a plaintext client or one trusting another CA gets nothing. The
stream carries private signing keys, so PolicySync sends it only inside TLS or to a
loopback peer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from admin_api.app import AdminApp, create_admin_app
from admin_api.sync.watch import WatchConfig
from admin_api.transports.grpc.policy_sync import carries_secrets_safely
from authz_server.index.store import PolicyStore
from authz_server.sync_client import PolicySyncClient, token_source
from mesh.local_ca import Issued
from portcullis_shared.tls_context import grpc_channel_credentials
from tests.tls.conftest import auto_settings


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AdminApp]:
    monkeypatch.delenv("PORTCULLIS_DATABASE_URL", raising=False)
    app = create_admin_app(auto_settings(tmp_path), grpc_port=0,
                           watch_config=WatchConfig(poll_interval=0.05, heartbeat_interval=0.2))
    app.start()
    yield app
    app.stop()


def _follow(app: AdminApp, credentials: grpc.ChannelCredentials | None, seconds: float) -> PolicyStore:
    store = PolicyStore()
    client = PolicySyncClient(store, f"127.0.0.1:{app.grpc_port}",
                              token_source(None, app.settings.sync_token_file), credentials=credentials)
    client.start()
    try:
        deadline = time.monotonic() + seconds
        while not store.ready and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.stop()
    return store


def test_watch_over_tls_verifies_admin_api_and_gets_the_policy(app: AdminApp) -> None:
    files = app.settings.tls_files
    assert files is not None
    store = _follow(app, grpc_channel_credentials(files.ca_file), seconds=20.0)
    assert store.ready and store.revision > 0


def test_watch_that_trusts_another_ca_gets_nothing(app: AdminApp, other_ca: dict[str, Issued]) -> None:
    store = _follow(app, grpc_channel_credentials(other_ca["ca"].cert_file), seconds=2.0)
    assert not store.ready


def test_plaintext_gets_nothing_from_a_tls_port(app: AdminApp) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
        with pytest.raises(grpc.RpcError) as refused:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2.0)
    assert refused.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class _Context:
    """What carries_secrets_safely reads of a grpc.ServicerContext."""

    def __init__(self, peer: str, security: bytes | None) -> None:
        self._peer = peer
        self._auth = {} if security is None else {"transport_security_type": [security]}

    def peer(self) -> str:
        return self._peer

    def auth_context(self) -> dict[str, list[bytes]]:
        return self._auth


@pytest.mark.parametrize("peer, security, safe", [
    ("ipv4:127.0.0.1:50000", None, True),
    ("ipv6:[::1]:50000", None, True),
    ("ipv6:[::ffff:127.0.0.1]:50000", None, True),
    ("unix:/run/portcullis.sock", None, True),
    ("ipv4:10.0.0.8:50000", None, False),
    ("ipv6:[2001:db8::8]:50000", None, False),
    ("ipv4:10.0.0.8:50000", b"insecure", False),
    ("ipv4:10.0.0.8:50000", b"ssl", True),
    ("unknown", None, False),
])
def test_signing_keys_travel_only_inside_tls_or_over_loopback(peer: str, security: bytes | None, safe: bool) -> None:
    assert carries_secrets_safely(_Context(peer, security)) is safe  # type: ignore[arg-type]
