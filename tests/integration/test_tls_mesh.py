"""The whole mesh with PORTCULLIS_TLS=auto (what `make run PORTCULLIS_TLS=auto` starts): a
local CA, TLS on every listener, every client verifying. An API call through Envoy's
gateway over TLS (HTTP/1.1 and HTTP/2 by ALPN), decided by authz_server over mTLS, on a
route that came from admin_api over xDS on TLS; nothing answers plaintext; certificates
rotated under the running mesh apply without a restart."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from cryptography import x509

from mesh.local_ca import ensure_local_ca, reissue
from portcullis_shared.tls import TlsSettings
from portcullis_shared.tls_context import client_context
from tests.integration.conftest import SESSION_ENV, LiveMesh, start_live_mesh
from tests.integration.gateway import assert_allowed, eventually, wait_until
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


def _connection_serial(response: httpx.Response) -> int:
    """The serial of the certificate shown on the connection that carried `response`."""
    der = response.extensions["network_stream"].get_extra_info("ssl_object").getpeercert(True)
    return x509.load_der_x509_certificate(der).serial_number


def _file_serial(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def test_rotated_certificates_apply_without_a_restart(tls_live: LiveMesh, api_and_key: tuple[str, str],
                                                      tmp_path: Path) -> None:
    """Every identity re-issued under the running mesh (mesh.local_ca.reissue renames each
    file into place): Envoy reads its secrets again (file-based SDS), authz_server and
    admin_api their certificates for new connections; a connection from before keeps
    working, and calls through the gateway go on being decided over mTLS."""
    base_path, key = api_and_key
    files = tls_live.settings.tls_files
    assert files is not None
    directory = files.ca_file.parent
    pids = {name: tls_live.mesh[name].pid for name in ("envoy", "authz_server", "admin_api")}
    updates = {cluster: tls_live.envoy_counter(f"cluster.{cluster}.client_ssl_socket_factory.ssl_context_update_by_sds")
               for cluster in ("authz", "xds")}
    verify = client_context(_ca(tls_live))
    with httpx.Client(base_url=tls_live.gateway_url, verify=verify, trust_env=False, timeout=10.0) as old:
        first = old.get(f"{base_path}/menu", headers={"apikey": key})
        assert_allowed(first)
        before = _connection_serial(first)
        for who in ("gateway", "client", "authz", "admin"):
            reissue(directory, who)

        def new_gateway_connection() -> tuple[httpx.Response, int]:
            with httpx.Client(verify=verify, trust_env=False, timeout=10.0) as new:
                response = new.get(f"{tls_live.gateway_url}{base_path}/menu", headers={"apikey": key})
                return response, _connection_serial(response)

        rotated = _file_serial(files.require("gateway").cert_file)
        wait_until(lambda: new_gateway_connection()[1] == rotated,
                   "a new connection to the gateway shows the rotated certificate", timeout=15.0)
        assert rotated != before
        assert_allowed(new_gateway_connection()[0])
        kept = old.get(f"{base_path}/menu", headers={"apikey": key})   # the connection from before
        assert_allowed(kept)
        assert _connection_serial(kept) == before
    # The CA bundle grows by a second CA (the first step of a CA rotation): Envoy reads its
    # validation secret again for both clusters, the new bundle trusted alongside the old.
    stranger = ensure_local_ca(tmp_path / "next-ca")["ca"].cert_file
    bundle = directory / "ca.pem.next"
    bundle.write_bytes(files.ca_file.read_bytes() + stranger.read_bytes())
    os.replace(bundle, files.ca_file)
    for cluster, count in updates.items():
        wait_until(lambda: tls_live.envoy_counter(
            f"cluster.{cluster}.client_ssl_socket_factory.ssl_context_update_by_sds") > count,
            f"Envoy reloaded the {cluster} cluster's TLS secrets", timeout=15.0)
    with httpx.Client(verify=verify, trust_env=False, timeout=10.0) as new:
        answer = new.get(f"{tls_live.admin_url}/backend-jwt/jwks.json")
        assert answer.status_code == 200
        assert _connection_serial(answer) == _file_serial(files.require("admin").cert_file)
    # A change made now still reaches Envoy (xDS) and authz_server (PolicySync), and is decided.
    api = create_api(tls_live)
    _key, value, _app = ready_key(api)
    eventually(lambda: api.get("/menu", key=value), 200)
    assert {name: tls_live.mesh[name].pid for name in pids} == pids, "nothing was restarted"
