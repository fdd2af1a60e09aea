"""The whole mesh with PORTCULLIS_TLS=auto (what `make run PORTCULLIS_TLS=auto` starts): a
local CA, TLS on every listener, every client verifying. An API call through Envoy's
gateway over TLS (HTTP/1.1 and HTTP/2 by ALPN), decided by authz_server over mTLS, on a
route that came from admin_api over xDS on TLS; nothing answers plaintext."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from mesh.local_ca import ensure_local_ca
from portcullis_shared.tls import TlsSettings
from portcullis_shared.tls_context import client_context
from tests.integration.conftest import SESSION_ENV, LiveMesh, start_live_mesh
from tests.integration.gateway import assert_allowed, eventually
from tests.integration.scenario import create_api, ready_key

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveMesh]:
    yield from start_live_mesh(tmp_path_factory.mktemp("tls-mesh"), SESSION_ENV, tls=TlsSettings(mode="auto"))


@pytest.fixture(scope="module")
def api_and_key(tls_live: LiveMesh) -> tuple[str, str]:
    api = create_api(tls_live)
    _key, value, _app = ready_key(api)
    eventually(lambda: api.get("/menu", key=value), 200)
    return api.base_path, value


def _ca(live: LiveMesh) -> Path:
    files = live.settings.tls_files
    assert files is not None
    return files.ca_file


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "h2"])
def test_an_api_call_through_the_gateway_over_tls(tls_live: LiveMesh, api_and_key: tuple[str, str],
                                                  http2: bool) -> None:
    base_path, key = api_and_key
    settings = tls_live.settings
    with httpx.Client(base_url=f"https://127.0.0.1:{settings.gateway_port}", verify=client_context(_ca(tls_live)),
                      http2=http2, trust_env=False, timeout=10.0) as client:
        response = client.get(f"{base_path}/menu", headers={"apikey": key})
    assert_allowed(response, "production")
    assert response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")


def test_a_denial_comes_back_over_tls_too(tls_live: LiveMesh, api_and_key: tuple[str, str]) -> None:
    base_path, _key = api_and_key
    response = tls_live.gateway.get(f"{base_path}/menu")
    assert response.status_code == 401 and response.json()["code"] == "credential_missing"


def test_a_client_that_does_not_trust_the_gateway_is_refused(tls_live: LiveMesh, tmp_path: Path,
                                                             api_and_key: tuple[str, str]) -> None:
    stranger = ensure_local_ca(tmp_path / "stranger")["ca"].cert_file
    with httpx.Client(verify=client_context(stranger), trust_env=False, timeout=5.0) as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            client.get(f"https://127.0.0.1:{tls_live.settings.gateway_port}{api_and_key[0]}/menu")


@pytest.mark.parametrize("port_field", ["gateway_port", "admin_rest_port"])
def test_plaintext_http_gets_no_answer(tls_live: LiveMesh, port_field: str) -> None:
    port = getattr(tls_live.settings, port_field)
    with httpx.Client(trust_env=False, timeout=5.0) as client:
        try:
            response = client.get(f"http://127.0.0.1:{port}/")
        except httpx.HTTPError:
            return   # the TLS server dropped the connection
    assert response.status_code == 400   # uvicorn's and Envoy's answer to plaintext on a TLS port


@pytest.mark.parametrize("port_field", ["admin_grpc_port", "authz_port"])
def test_plaintext_grpc_gets_no_answer(tls_live: LiveMesh, port_field: str) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{getattr(tls_live.settings, port_field)}") as channel:
        with pytest.raises(grpc.RpcError):
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2.0)


@pytest.mark.parametrize("cluster", ["authz", "xds"])
def test_envoy_reaches_authz_server_and_admin_api_over_verified_tls(tls_live: LiveMesh, cluster: str,
                                                                     api_and_key: tuple[str, str]) -> None:
    # Handshakes that succeeded, and none that failed verification.
    assert tls_live.envoy_counter(f"cluster.{cluster}.ssl.handshake") > 0
    assert tls_live.envoy_counter(f"cluster.{cluster}.ssl.fail_verify_error") == 0
    assert tls_live.envoy_counter(f"cluster.{cluster}.ssl.fail_verify_san") == 0
