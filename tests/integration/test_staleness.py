"""Readiness that knows its staleness, on a mesh of this module's own (heartbeats every
second, PORTCULLIS_MAX_STALENESS_SECONDS=3): while admin_api is stopped the staleness
rises, gRPC health turns NOT_SERVING past the threshold (logged once per worker), and
calls through Envoy are still decided from the last state (fail static)."""

from __future__ import annotations

import time
from typing import Iterator

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from authz_server.settings import worker_count, worker_ports
from mesh.components import ADMIN_API, AUTHZ_SERVER
from tests.integration.conftest import LiveMesh, start_live_mesh
from tests.integration.endpoints import envoy_admin_url, grpc_channel
from tests.integration.gateway import assert_allowed, assert_denied, eventually
from tests.integration.metrics_scrape import authz_metrics_url, scrape, value
from tests.integration.scenario import create_api, ready_key

pytestmark = pytest.mark.integration

MAX_STALENESS = 3.0
NOT_SERVING_LINE = "gRPC health NOT_SERVING"


@pytest.fixture(scope="module")
def stale_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveMesh]:
    yield from start_live_mesh(tmp_path_factory.mktemp("stale"), {"PORTCULLIS_MAX_STALENESS_SECONDS": str(MAX_STALENESS)},
                               sync_heartbeat_seconds=1.0)


def _health(live: LiveMesh) -> list[int]:
    statuses = []
    for port in worker_ports(live.settings.authz_port, worker_count({})):
        with grpc_channel(live.settings, f"{live.settings.host}:{port}", client_certificate=True) as channel:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="envoy.service.auth.v3.Authorization"), timeout=2.0)
            statuses.append(answer.status)
    return statuses


def _until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.1)


def _envoy_unhealthy_authz_hosts(live: LiveMesh) -> int:
    import httpx

    url = f"{envoy_admin_url(live.settings)}/clusters"
    lines = httpx.get(url, timeout=5.0, trust_env=False).text.splitlines()
    return sum(1 for line in lines if line.startswith("authz::") and "::health_flags::" in line
               and "failed_active_hc" in line)


def _staleness(live: LiveMesh) -> list[float]:
    _, samples = scrape(authz_metrics_url(live))
    return [v for (name, _labels), v in samples.items() if name == "portcullis_policy_staleness_seconds"]


def test_stale_replicas_say_not_serving_and_keep_deciding(stale_mesh: LiveMesh) -> None:
    api = create_api(stale_mesh)
    _key, key_value, _app = ready_key(api)
    eventually(lambda: api.get("/menu", key=key_value), 200)
    assert set(_health(stale_mesh)) == {health_pb2.HealthCheckResponse.SERVING}
    assert max(_staleness(stale_mesh)) < MAX_STALENESS
    log = stale_mesh.settings.data_dir / "logs" / f"{AUTHZ_SERVER}.log"
    admin_api = stale_mesh.mesh[ADMIN_API]
    admin_api.stop()
    try:
        first = min(_staleness(stale_mesh))
        _until(lambda: min(_staleness(stale_mesh)) > first + 1.0, 10.0, "staleness rises without admin_api")
        _until(lambda: set(_health(stale_mesh)) == {health_pb2.HealthCheckResponse.NOT_SERVING}, 15.0,
               "every worker NOT_SERVING past the threshold")
        _, samples = scrape(authz_metrics_url(stale_mesh))
        assert value(samples, "portcullis_serving") == 0
        # Every replica stale: once Envoy marks them all unhealthy, its panic threshold still
        # sends the calls, decided from the last state.
        workers = len(_health(stale_mesh))
        _until(lambda: _envoy_unhealthy_authz_hosts(stale_mesh) == workers, 15.0, "Envoy sees every worker unhealthy")
        assert_allowed(api.get("/menu", key=key_value))
        assert_denied(api.get("/menu"), 401, "credential_missing")
        checks = stale_mesh.envoy_counter("cluster.authz.health_check.attempt")
        _until(lambda: stale_mesh.envoy_counter("cluster.authz.health_check.attempt") >= checks + 2 * workers, 15.0,
               "more health checks while stale")
        assert log.read_text().count(NOT_SERVING_LINE) == workers   # logged once, not per check
    finally:
        admin_api.start()
        admin_api.wait_ready()
    _until(lambda: set(_health(stale_mesh)) == {health_pb2.HealthCheckResponse.SERVING}, 30.0,
           "SERVING again once admin_api is back")
    assert log.read_text().count("fresh again") == workers
    assert_allowed(api.get("/menu", key=key_value))
