"""A fleet (issue 15): ten authz_server replicas of one worker each and two Envoys (each in
front of five of them), all fed by one admin_api (SQLite). A revoked API key and a blocked
subscription reach every one of them: each replica, asked directly the way Envoy asks it,
and each Envoy deny with the right status and reason code within a bounded time.

Every replica is asked directly because an Envoy's round robin over its five would not
show that each of them has the change. `make bench` (the fleet part) times the same
revoke-to-deny across the replicas; this test only bounds it."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import httpx
import pytest
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from google.rpc import code_pb2

from authz_server.settings import worker_count
from bench.check_bodies import check_request
from mesh import fleet as fleet_module
from mesh.runner import Mesh
from portcullis_shared.settings import MeshSettings
from portcullis_shared.tls import TlsSettings
from tests.integration.admin_client import AdminClient
from tests.integration.conftest import SESSION_ENV, SUITE_TLS_MODE, LiveMesh, client_verify, mesh_ports
from tests.integration.gateway import assert_allowed, assert_denied, describe, eventually, matches
from tests.integration.scenario import PublishedApi, create_api

pytestmark = pytest.mark.integration

REPLICAS = 10
ENVOYS = 2
# A change normally reaches every replica in well under a second; the bound is generous
# because ten replicas and two Envoys share a small, busy machine.
BOUND_SECONDS = 10.0
ENVOY_CALLS = 10       # per Envoy, all denied: every one of its replicas is asked in turn


@dataclass
class RunningFleet:
    fleet: fleet_module.Fleet
    views: list[LiveMesh]       # one per Envoy: the admin client and that Envoy's gateway
    stubs: list[external_auth_pb2_grpc.AuthorizationStub]

    @property
    def admin(self) -> AdminClient:
        return self.views[0].admin


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningFleet]:
    data_dir = tmp_path_factory.mktemp("fleet")
    base_env = {name: value for name, value in os.environ.items() if not name.startswith("PORTCULLIS_")}
    base_env.update(SESSION_ENV)
    settings = MeshSettings(data_dir=data_dir, tls=TlsSettings(mode=SUITE_TLS_MODE),
                            **mesh_ports(worker_count(base_env)))
    mesh = Mesh(settings, base_env=base_env, log_dir=data_dir / "logs")
    mesh.start_control_plane()
    fleet = fleet_module.build(settings, base_env, replicas=REPLICAS, envoys=ENVOYS, log_dir=data_dir / "logs")
    channels: list[grpc.Channel] = []
    clients: list[httpx.Client] = []
    admin = None
    try:
        fleet.start()
        verify = client_verify(settings)
        admin = AdminClient(f"{settings.rest_scheme}://{settings.host}:{settings.admin_rest_port}",
                            settings.admin_token_file, verify=verify)
        views = []
        for gateway in fleet.gateways:
            client = httpx.Client(base_url=gateway.base_url, timeout=10.0, trust_env=False, verify=verify)
            clients.append(client)
            views.append(LiveMesh(mesh, admin, client))
        channels = [fleet.authz_channel(index) for index in range(REPLICAS)]
        yield RunningFleet(fleet, views, [external_auth_pb2_grpc.AuthorizationStub(each) for each in channels])
    finally:
        for channel in channels:
            channel.close()
        for client in clients:
            client.close()
        if admin is not None:
            admin.close()
        fleet.stop()
        mesh.stop()


def _denial(response: external_auth_pb2.CheckResponse) -> tuple[int, str | None]:
    """(HTTP status, reason code) of a Check answer; (200, None) for an allow."""
    if response.status.code == code_pb2.OK:
        return 200, None
    denied = response.denied_response
    try:
        code = json.loads(denied.body).get("code")
    except ValueError:
        code = None
    return int(denied.status.code), code


class Probe:
    """One call of the fleet's: through Envoy `j`'s gateway, or to replica `i` directly."""

    def __init__(self, running: RunningFleet, api: PublishedApi, key: str) -> None:
        self.running, self.api, self.key = running, api, key
        self.message = check_request(api.base_path + "/menu", {"apikey": key})

    def replica(self, index: int) -> tuple[int, str | None]:
        return _denial(self.running.stubs[index].Check(self.message, timeout=5.0))

    def gateway(self, index: int) -> httpx.Response:
        return self.running.views[index].gateway.get(self.api.base_path + "/menu", headers={"apikey": self.key})


def _ready_key(running: RunningFleet) -> tuple[PublishedApi, dict, dict, str]:
    """A new API, subscribed application and key, allowed by every Envoy and replica."""
    api = create_api(running.views[0])
    app, subscription = api.subscribed_app()
    key, value = api.new_key(application_id=app["id"])
    probe = Probe(running, api, value)
    for index in range(ENVOYS):   # its route reached each Envoy over xDS, its key each replica behind it
        view_api = PublishedApi(running.views[index], api.api)
        assert_allowed(eventually(lambda: view_api.get("/menu", key=value), 200, timeout=30.0))
    for index in range(REPLICAS):
        deadline = time.monotonic() + 30.0
        while probe.replica(index) != (200, None):
            assert time.monotonic() < deadline, f"replica {index} never allowed the new key: {probe.replica(index)}"
            time.sleep(0.05)
    return api, subscription, key, value


def _until_all_deny(probe: Probe, status: int, code: str, started: float) -> dict[str, float]:
    """Asks every replica and every Envoy until each denies with (status, code); returns the
    seconds from `started` to each one's first such denial. An allow meanwhile is fine (the
    change is on its way); any other answer fails at once."""
    seen: dict[str, float] = {}
    last: dict[str, str] = {}
    while len(seen) < REPLICAS + ENVOYS:
        if time.monotonic() - started > BOUND_SECONDS:
            missing = {name: last.get(name) for name in
                       [f"authz_server-{i}" for i in range(REPLICAS)] + [f"envoy-{j}" for j in range(ENVOYS)]
                       if name not in seen}
            raise AssertionError(f"not denied {status} {code} within {BOUND_SECONDS:g}s by: {missing}")
        for index in range(REPLICAS):
            name = f"authz_server-{index}"
            if name in seen:
                continue
            answer = probe.replica(index)
            last[name] = repr(answer)
            if answer == (status, code):
                seen[name] = time.monotonic() - started
            else:
                assert answer == (200, None), f"{name} answered {answer}"
        for index in range(ENVOYS):
            name = f"envoy-{index}"
            if name in seen:
                continue
            response = probe.gateway(index)
            last[name] = describe(response)
            if matches(response, status, code):
                seen[name] = time.monotonic() - started
            else:
                assert response.status_code == 200, describe(response)
    # Once every replica denies, every call through either Envoy is denied, whichever of its
    # replicas it reaches, in full (JSON body, reason header, nothing sent to a backend).
    for index in range(ENVOYS):
        for _ in range(ENVOY_CALLS):
            assert_denied(probe.gateway(index), status, code)
    return seen


def test_every_replica_and_envoy_is_up_and_separate(running: RunningFleet) -> None:
    fleet = running.fleet
    assert len(fleet.replicas) == REPLICAS and len(fleet.gateways) == ENVOYS
    assert len(set(fleet.authz_ports)) == REPLICAS
    assert sorted(i for gateway in fleet.gateways for i in gateway.replicas) == list(range(REPLICAS))
    assert fleet.dead() == []


def test_a_revoked_api_key_is_denied_by_the_whole_fleet(running: RunningFleet) -> None:
    api, _subscription, key, value = _ready_key(running)
    started = time.monotonic()
    running.admin.revoke(key["id"])
    seen = _until_all_deny(Probe(running, api, value), 401, "api_key_revoked", started)
    assert max(seen.values()) < BOUND_SECONDS, seen
    assert running.fleet.dead() == []


def test_a_blocked_subscription_is_denied_by_the_whole_fleet(running: RunningFleet) -> None:
    api, subscription, _key, value = _ready_key(running)
    started = time.monotonic()
    running.admin.set_subscription_status(subscription["id"], "BLOCKED")
    seen = _until_all_deny(Probe(running, api, value), 403, "subscription_inactive", started)
    assert max(seen.values()) < BOUND_SECONDS, seen
    assert running.fleet.dead() == []
