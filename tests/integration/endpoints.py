"""Where the integration tests reach a mesh and how, in whichever mode it runs: the URLs of
admin_api's REST port and Envoy's gateway (https with TLS on), HTTP clients that verify
against the mesh's CA, and gRPC channels with the CA (and the client certificate that
authz_server requires). Tests use these instead of spelling `http://` or opening
insecure channels, so that the same test passes with PORTCULLIS_TEST_TLS=1.

What stays plaintext in every mode (loopback only): Envoy's admin, authz_server's
metrics port and the sample backends.
"""

from __future__ import annotations

import dataclasses
import os
import ssl
from pathlib import Path
from typing import Any

import grpc
import httpx

from portcullis_shared.settings import MeshSettings
from portcullis_shared.tls import CertKey, TlsSettings
from portcullis_shared.tls_context import client_context, grpc_channel_credentials
from tests.integration.admin_client import AdminClient

# PORTCULLIS_TEST_TLS=1 (or `auto`) runs every mesh the integration tests start with
# PORTCULLIS_TLS=auto: a local CA, TLS on every listener, every client verifying (what
# `make test-integration-tls` does; `make test` does it for the Makefile's TLS_MODULES).
# tests/integration/test_tls_mesh.py runs on TLS in both modes.
TLS_ON_VALUES = ("1", "true", "yes", "on", "auto")


def suite_tls_mode(env: dict[str, str] | None = None) -> str:
    """The PORTCULLIS_TLS mode of the suite's meshes: `auto` or `off`."""
    value = (os.environ if env is None else env).get("PORTCULLIS_TEST_TLS", "").strip().lower()
    return "auto" if value in TLS_ON_VALUES else "off"


def client_verify(settings: MeshSettings) -> ssl.SSLContext | bool:
    """What a test's HTTP client checks the mesh's certificates against."""
    files = settings.tls_files
    return True if files is None else client_context(files.ca_file)


def admin_url(settings: MeshSettings, replica: int = 0) -> str:
    """admin_api's REST port (replica `replica` of PORTCULLIS_ADMIN_REPLICAS)."""
    return f"{settings.rest_scheme}://{settings.host}:{settings.admin_rest_port + replica}"


def gateway_url(settings: MeshSettings, port: int | None = None) -> str:
    """Envoy's gateway listener (another Envoy's with `port`: it serves TLS alike)."""
    return f"{settings.rest_scheme}://{settings.host}:{settings.gateway_port if port is None else port}"


def envoy_admin_url(settings: MeshSettings, port: int | None = None) -> str:
    """Envoy's admin (loopback, plaintext in every mode)."""
    return f"http://{settings.host}:{settings.envoy_admin_port if port is None else port}"


def authz_metrics_url(settings: MeshSettings, port: int | None = None) -> str:
    """authz_server's /metrics (loopback, plaintext in every mode)."""
    return f"http://{settings.host}:{settings.authz_metrics_port if port is None else port}/metrics"


def http_client(settings: MeshSettings, **options: Any) -> httpx.Client:
    """An httpx client that verifies the mesh's certificates (and ignores proxies)."""
    options.setdefault("timeout", 10.0)
    return httpx.Client(trust_env=False, verify=client_verify(settings), **options)


def http_get(settings: MeshSettings, url: str, **options: Any) -> httpx.Response:
    return httpx.get(url, trust_env=False, verify=client_verify(settings), **{"timeout": 5.0, **options})


def http_post(settings: MeshSettings, url: str, **options: Any) -> httpx.Response:
    return httpx.post(url, trust_env=False, verify=client_verify(settings), **{"timeout": 5.0, **options})


def admin_client(settings: MeshSettings, replica: int = 0) -> AdminClient:
    """An admin REST client with the bootstrap admin token, on replica `replica`."""
    return AdminClient(admin_url(settings, replica), settings.admin_token_file, verify=client_verify(settings))


def grpc_channel(settings: MeshSettings, target: str, *, client_certificate: bool = False) -> grpc.Channel:
    """A channel to one of the mesh's gRPC ports (admin_api's, or authz_server's with
    `client_certificate`: it requires the mesh's client certificate with TLS on)."""
    files = settings.tls_files
    if files is None:
        return grpc.insecure_channel(target)
    identity = files.require("client") if client_certificate else None
    return grpc.secure_channel(target, grpc_channel_credentials(files.ca_file, identity=identity))


def tls_pinned(settings: MeshSettings) -> TlsSettings:
    """`settings.tls` with every certificate file named explicitly (mode `on`), so that a
    copy of the settings with another data directory (an extra Envoy, a second gateway
    node) still uses this mesh's CA and certificates; unchanged with TLS off."""
    files = settings.tls_files
    if files is None:
        return settings.tls

    def pair(identity: CertKey | None) -> tuple[Path | None, Path | None]:
        return (None, None) if identity is None else (identity.cert_file, identity.key_file)

    (admin_cert, admin_key), (authz_cert, authz_key) = pair(files.admin), pair(files.authz)
    (gateway_cert, gateway_key), (client_cert, client_key) = pair(files.gateway), pair(files.client)
    return dataclasses.replace(settings.tls, mode="on", ca_file=files.ca_file,
                               admin_cert_file=admin_cert, admin_key_file=admin_key,
                               authz_cert_file=authz_cert, authz_key_file=authz_key,
                               gateway_cert_file=gateway_cert, gateway_key_file=gateway_key,
                               client_cert_file=client_cert, client_key_file=client_key)
