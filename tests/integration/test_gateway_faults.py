"""The data plane without its control plane, through the real mesh: admin_api killed,
Envoy restarted, an Envoy without the gateway credential."""

from __future__ import annotations

import dataclasses
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mesh import envoy_config
from mesh.components import ADMIN_API, ENVOY, envoy_binary
from mesh.processes import Component
from mesh.readiness import http_ok
from mesh.runner import free_port
from portcullis_shared.settings import REPO_ROOT
from tests.integration.conftest import LiveMesh, start_live_mesh
from tests.integration.endpoints import admin_client, envoy_admin_url, gateway_url, http_get, tls_pinned
from tests.integration.gateway import eventually, wait_until
from tests.integration.metrics_scrape import wait_every_worker_synced
from tests.integration.own_backend import OwnBackend
from tests.integration.scenario import create_api

pytestmark = pytest.mark.integration

OPEN = [{"method": "*", "path": "/*", "open": True}]
# Envoy retries its xDS stream every 0.5 s to 5 s; authz_server's Watch backs off too.
RECONNECT_SECONDS = 20.0


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveMesh]:
    yield from start_live_mesh(tmp_path_factory.mktemp("gateway-faults"))


@pytest.fixture
def backend() -> Iterator[OwnBackend]:
    backend = OwnBackend("own")
    yield backend
    backend.close()


def _gateways(live: LiveMesh) -> list[dict]:
    admin = admin_client(live.settings)
    try:
        return admin.call("GET", "/v1/gateways").get("gateways", [])
    finally:
        admin.close()


def _acked_current(live: LiveMesh) -> bool:
    admin = admin_client(live.settings)
    try:
        answer = admin.call("GET", "/v1/gateways")
    finally:
        admin.close()
    return any(g["node_id"] == envoy_config.DEFAULT_NODE_ID and g.get("connected")
               and g.get("acked_version") == answer["current_version"] for g in answer.get("gateways", []))


def test_admin_api_killed_routes_keep_working_and_envoy_resumes_when_it_is_back(faulty: LiveMesh,
                                                                                backend: OwnBackend) -> None:
    api = create_api(faulty, resources=OPEN, subscription_less=True, production_endpoint=backend.url("/kept"),
                     sandbox_endpoint="")
    eventually(lambda: faulty.gateway.get(api.base_path + "/a"), 200)
    admin_api = faulty.mesh[ADMIN_API]
    os.kill(admin_api.pid, signal.SIGKILL)  # no goodbye on the xDS stream
    admin_api.stop()
    try:
        for _ in range(20):
            answer = faulty.gateway.get(api.base_path + "/a")
            assert answer.status_code == 200 and answer.json()["backend"] == "own"
        assert backend.seen[-1].target == "/kept/a"
    finally:
        admin_api.start()
        admin_api.wait_ready()
    # Back: Envoy reconnects, acknowledges the current version, and follows new changes.
    wait_until(lambda: _acked_current(faulty), "Envoy acknowledged the current version again",
               timeout=RECONNECT_SECONDS)
    admin = admin_client(faulty.settings)
    try:
        admin.call("PATCH", f"/v1/apis/{api.id}", {"production_endpoint": backend.url("/moved")})
    finally:
        admin.close()
    wait_until(lambda: faulty.gateway.get(api.base_path + "/a").status_code == 200
               and backend.seen[-1].target == "/moved/a", "the change after the restart reached Envoy",
               timeout=RECONNECT_SECONDS)


def test_a_restarted_envoy_answers_only_with_its_routes_in_place(faulty: LiveMesh, backend: OwnBackend) -> None:
    api = create_api(faulty, resources=OPEN, subscription_less=True, production_endpoint=backend.url(),
                     sandbox_endpoint="")
    eventually(lambda: faulty.gateway.get(api.base_path + "/a"), 200)
    # The other worker may not have the API yet, and would answer api_not_found: that is
    # authz_server catching up, not Envoy opening before its routes, which this test is about.
    wait_every_worker_synced(faulty)
    envoy = faulty.mesh[ENVOY]
    envoy.stop()
    envoy.start()
    answers: list[int] = []
    # Who answered what, for a failure to tell Envoy's own 404 (no route, flag NR in its
    # access log) from authz_server's (x-portcullis-reason) or the backend's.
    seen: list[str] = []
    url = f"{faulty.gateway_url}{api.base_path}/a"

    def answered_200() -> bool:
        try:
            response = http_get(faulty.settings, url)
        except httpx.TransportError:
            return False  # the listener is not open yet
        answers.append(response.status_code)
        seen.append(f"{response.status_code} reason={response.headers.get('x-portcullis-reason')} "
                    f"server={response.headers.get('server')} body={response.text[:80]!r}")
        return response.status_code == 200

    wait_until(answered_200, "the restarted Envoy serves the API", timeout=30.0)
    envoy.wait_ready()
    assert set(answers) == {200}, f"answers before the routes were in place: {seen}"


def test_an_envoy_without_the_gateway_credential_gets_no_configuration(faulty: LiveMesh, tmp_path: Path) -> None:
    # Its own data directory, the mesh's certificates (with TLS on: the same CA, as a real
    # intruder inside the network could have; only the gateway credential is missing).
    settings = dataclasses.replace(faulty.settings, data_dir=tmp_path, gateway_port=free_port(),
                                   envoy_admin_port=free_port(), tls=tls_pinned(faulty.settings))
    config = envoy_config.write(settings, node_id="intruder", gateway_token="pcg_" + "x" * 43)
    intruder = Component("intruder", [str(envoy_binary()), "-c", str(config), "--disable-hot-restart",
                                      "--log-level", "warn", "--base-id", "7"],
                         env=dict(os.environ), probe=http_ok(f"{envoy_admin_url(settings)}/ready",
                                                             expect_body="LIVE"),
                         cwd=REPO_ROOT, log_path=tmp_path / "intruder.log")
    intruder.start()
    try:
        admin_log = faulty.mesh[ADMIN_API].log_path
        before = _refusals(admin_log)
        # Refused, and refused again when Envoy retries: it never gets a configuration.
        wait_until(lambda: _refusals(admin_log) >= before + 2, "the intruder's xDS streams were refused",
                   timeout=30.0)
        assert not intruder.is_ready()
        assert "intruder" not in {g["node_id"] for g in _gateways(faulty)}
        with pytest.raises(httpx.TransportError):
            http_get(settings, f"{gateway_url(settings)}/", timeout=2.0)
    finally:
        intruder.stop()


def _refusals(log: Path | None) -> int:
    assert log is not None
    return sum("refused: invalid credential" in line for line in log.read_text(errors="replace").splitlines())
