"""The real mesh (Envoy, authz_server, admin_api, both sample backends) on free ports in
a temporary data directory, started and stopped by the same `mesh` library as `make run`."""

from __future__ import annotations

import os
import re
import socket
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import httpx
import pytest

from authz_server.settings import worker_count
from mesh.runner import Mesh, free_port_block
from portcullis_shared.settings import MeshSettings
from portcullis_shared.tls import TlsSettings
from tests.integration.admin_client import AdminClient
from tests.integration.endpoints import admin_url, client_verify, envoy_admin_url, gateway_url, suite_tls_mode
from tests.fake_idp import FakeIdp

PORT_FIELDS = (
    "gateway_port",
    "envoy_admin_port",
    "admin_rest_port",
    "admin_grpc_port",
    "authz_port",
    "authz_metrics_port",
    "backend_production_port",
    "backend_sandbox_port",
)


def distinct_free_ports(count: int) -> list[int]:
    """Free ports on loopback, all different (each socket stays bound until all are picked)."""
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def mesh_ports(authz_workers: int, admin_replicas: int = 1) -> dict[str, int]:
    """Free ports for every MeshSettings port field; authz_server's workers listen on
    `authz_workers` consecutive ports from authz_port, admin_api replicas on
    `admin_replicas` consecutive REST and gRPC ports, which no other field may take."""
    blocks = {"authz_port": authz_workers, "admin_rest_port": admin_replicas, "admin_grpc_port": admin_replicas}
    taken: set[int] = set()
    ports: dict[str, int] = {}
    for name, count in blocks.items():
        for _ in range(50):
            base = free_port_block(count)
            block = set(range(base, base + count))
            if not block & taken:
                break
        else:
            raise RuntimeError(f"no {count} consecutive free ports for {name}")
        taken |= block
        ports[name] = base
    others = [port for port in distinct_free_ports(len(PORT_FIELDS) + len(taken)) if port not in taken]
    fields = [name for name in PORT_FIELDS if name not in blocks]
    return {**ports, **dict(zip(fields, others))}


@dataclass
class LiveMesh:
    mesh: Mesh
    admin: AdminClient
    gateway: httpx.Client

    @property
    def settings(self) -> MeshSettings:
        return self.mesh.settings

    @property
    def admin_url(self) -> str:
        """admin_api's REST port, https with TLS on (tests.integration.endpoints)."""
        return admin_url(self.settings)

    @property
    def gateway_url(self) -> str:
        return gateway_url(self.settings)

    def backend_requests(self) -> int:
        """Requests Envoy sent to any API's backend (every per-API cluster from xDS)."""
        url = f"{envoy_admin_url(self.settings)}/stats"
        response = httpx.get(url, params={"filter": r"^cluster\.api\..*\.upstream_rq_total$"}, timeout=5.0,
                             trust_env=False)
        response.raise_for_status()
        return sum(int(line.partition(": ")[2]) for line in response.text.splitlines() if ": " in line)

    def envoy_counter(self, name: str) -> int:
        """A counter from Envoy's admin /stats, e.g. cluster.authz.upstream_rq_total."""
        url = f"{envoy_admin_url(self.settings)}/stats"
        response = httpx.get(url, params={"filter": f"^{re.escape(name)}$"}, timeout=5.0, trust_env=False)
        response.raise_for_status()
        for line in response.text.splitlines():
            stat, _, value = line.partition(": ")
            if stat == name:
                return int(value)
        raise LookupError(f"Envoy has no counter {name}")


# Deployment settings of the session mesh: multiple consumer secrets on, at most this
# many per application key (the OAuth2 tests check both).
MAX_CONSUMER_SECRETS = 3
SESSION_SETTINGS = {"multiple_consumer_secrets": True, "max_consumer_secrets": MAX_CONSUMER_SECRETS}
# authz_server's token caches, shortened so that the suite stays fast: the JWKS refresh on
# an unknown kid is still rate limited (once per JWKS_MIN_REFRESH_SECONDS), and the
# introspection timeout stays under Envoy's ext_authz timeout (0.5 s) so that a slow
# provider gets authz_server's own answer (key_manager_unavailable).
JWKS_MIN_REFRESH_SECONDS = 1.0
SESSION_ENV = {
    "PORTCULLIS_JWKS_MIN_REFRESH_SECONDS": str(JWKS_MIN_REFRESH_SECONDS),
    "PORTCULLIS_INTROSPECTION_TIMEOUT_SECONDS": "0.3",
    "PORTCULLIS_INTROSPECTION_NEGATIVE_CACHE_SECONDS": "1",
    # Usage figures a second behind instead of 15 s (test_usage.py, the portal's browser test).
    "PORTCULLIS_USAGE_REPORT_SECONDS": "1",
}


# PORTCULLIS_TEST_TLS=1 runs every mesh of the suite with PORTCULLIS_TLS=auto (see
# tests.integration.endpoints); tests/integration/test_tls_mesh.py always does.
SUITE_TLS_MODE = suite_tls_mode()


def start_live_mesh(data_dir: Path, extra_env: Mapping[str, str] | None = None, **settings_fields: Any) -> Iterator[LiveMesh]:
    """`settings_fields`: MeshSettings fields other than the ports (they reach every
    child through MeshSettings.as_env); `extra_env`: other variables for the children."""
    # A developer's own PORTCULLIS_* settings (ports, database URL, tokens) must not leak in.
    base_env = {name: value for name, value in os.environ.items() if not name.startswith("PORTCULLIS_")}
    base_env.update(extra_env or {})
    settings_fields.setdefault("tls", TlsSettings(mode=SUITE_TLS_MODE))
    settings = MeshSettings(data_dir=data_dir, **mesh_ports(worker_count(base_env), settings_fields.get("admin_replicas", 1)),
                            **settings_fields)
    mesh = Mesh(settings, base_env=base_env, log_dir=data_dir / "logs")
    mesh.start()
    try:
        verify = client_verify(settings)
        admin = AdminClient(admin_url(settings), settings.admin_token_file, verify=verify)
        gateway = httpx.Client(base_url=gateway_url(settings), timeout=10.0, trust_env=False, verify=verify)
        try:
            yield LiveMesh(mesh, admin, gateway)
        finally:
            gateway.close()
            admin.close()
    finally:
        mesh.stop()


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveMesh]:
    """The shared mesh: tests that change global state restore it or use their own APIs."""
    yield from start_live_mesh(tmp_path_factory.mktemp("mesh"), SESSION_ENV, **SESSION_SETTINGS)


@pytest.fixture(scope="session")
def fake_idp() -> Iterator[FakeIdp]:
    """The external OIDC provider of the OAuth2 tests (its own HTTP server)."""
    with FakeIdp() as provider:
        yield provider


@pytest.fixture(scope="session")
def external_km(live: LiveMesh, fake_idp: FakeIdp) -> dict[str, object]:
    """The fake IdP registered in the session mesh as an external key manager (from its
    discovery URL, after start-up: it reaches authz_server through Watch)."""
    from tests.integration.oauth import register_external  # oauth imports this module

    return register_external(live, fake_idp, name="fake-idp")
