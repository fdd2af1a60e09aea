"""The mesh with PORTCULLIS_AUTHZ_UNIX_SOCKET: Envoy's `authz` cluster dials each worker's
Unix socket (a `pipe` address), and its calls are allowed and denied as over TCP."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from authz_server.settings import worker_socket_paths
from tests.integration.conftest import SESSION_ENV, LiveMesh, start_live_mesh
from tests.integration.endpoints import envoy_admin_url
from tests.integration.gateway import assert_allowed, eventually
from tests.integration.scenario import create_api, ready_key

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def uds_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveMesh]:
    data_dir = tmp_path_factory.mktemp("uds-mesh")
    yield from start_live_mesh(data_dir, SESSION_ENV, authz_unix_socket=data_dir / "authz" / "authz.sock")


def _sockets(live: LiveMesh) -> list[Path]:
    settings = live.settings
    assert settings.authz_unix_socket is not None
    return worker_socket_paths(settings.authz_unix_socket, live.mesh.authz_workers)


def test_every_worker_listens_on_a_private_unix_socket(uds_live: LiveMesh) -> None:
    for path in _sockets(uds_live):
        assert stat.S_ISSOCK(os.lstat(path).st_mode) and stat.S_IMODE(os.lstat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.lstat(uds_live.settings.authz_unix_socket.parent).st_mode) == 0o700


def test_envoy_asks_authz_server_over_the_unix_sockets(uds_live: LiveMesh) -> None:
    settings = uds_live.settings
    clusters = httpx.get(f"{envoy_admin_url(settings)}/clusters", timeout=5.0, trust_env=False).text
    hosts = {line.split("::")[1] for line in clusters.splitlines() if line.startswith("authz::")
             and line.count("::") >= 2 and line.split("::")[2] in ("cx_total", "health_flags")}
    assert hosts == {str(path) for path in _sockets(uds_live)}


def test_a_call_over_the_unix_socket_is_allowed_and_denied_as_over_tcp(uds_live: LiveMesh) -> None:
    api = create_api(uds_live)
    _key, value, _app = ready_key(api)
    assert_allowed(eventually(lambda: api.get("/menu", key=value), 200))
    missing = uds_live.gateway.get(f"{api.base_path}/menu")
    assert missing.status_code == 401 and missing.json()["code"] == "credential_missing"
    wrong = api.get("/menu", key=value + "x")
    assert wrong.status_code == 401
    before = uds_live.envoy_counter("cluster.authz.upstream_rq_total")
    assert_allowed(api.get("/menu", key=value))
    assert uds_live.envoy_counter("cluster.authz.upstream_rq_total") > before
