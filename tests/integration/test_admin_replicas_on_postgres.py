"""The real mesh on a real PostgreSQL with a second admin_api replica beside the mesh's
own: writes taken by both replicas at once reach Envoy (xDS from the first replica) and
authz_server (Watch on the first replica), and so does a revoke made on the second."""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesh import components
from tests.integration.admin_client import AdminClient
from tests.integration.conftest import SESSION_ENV, LiveMesh, distinct_free_ports, start_live_mesh
from tests.integration.endpoints import admin_client
from tests.integration.gateway import assert_allowed, eventually
from tests.integration.scenario import PublishedApi, create_api

pytestmark = pytest.mark.integration

KEYS_PER_REPLICA = 4


@pytest.fixture(scope="module")
def pg_live(tmp_path_factory: pytest.TempPathFactory, postgres_server) -> Iterator[LiveMesh]:
    url = postgres_server.create_database(migrated=False)   # admin_api migrates it at start
    try:
        yield from start_live_mesh(tmp_path_factory.mktemp("pg-mesh"), SESSION_ENV, database_url_override=url)
    finally:
        postgres_server.drop_database(url)


@pytest.fixture(scope="module")
def second_replica(pg_live: LiveMesh) -> Iterator[AdminClient]:
    """admin_api again, same database, data directory (KEK, tokens) and settings, on ports of its own."""
    rest, grpc = distinct_free_ports(2)
    settings = dataclasses.replace(pg_live.settings, admin_rest_port=rest, admin_grpc_port=grpc)
    base_env = {name: value for name, value in os.environ.items() if not name.startswith("PORTCULLIS_")}
    base_env.update(SESSION_ENV)
    log_dir = Path(settings.data_dir) / "logs-replica-2"
    log_dir.mkdir(exist_ok=True)
    replica = components.admin_api(settings, components.child_env(settings, base_env), python=sys.executable,
                                   log_dir=log_dir)
    replica.start()
    try:
        replica.wait_ready()
        client = admin_client(settings)
        try:
            yield client
        finally:
            client.close()
    finally:
        replica.stop()


def test_writes_through_both_replicas_reach_envoy_and_authz_server(pg_live: LiveMesh,
                                                                    second_replica: AdminClient) -> None:
    assert not (Path(pg_live.settings.data_dir) / "portcullis.db").exists()   # no SQLite anywhere
    through_second = LiveMesh(pg_live.mesh, second_replica, pg_live.gateway)
    api = create_api(through_second)                     # Envoy's route comes from the first replica's xDS
    app, _subscription = api.subscribed_app()
    first_side = PublishedApi(pg_live, api.api)
    values: dict[str, str] = {}
    errors: list[BaseException] = []

    def generate(side: PublishedApi, prefix: str) -> None:
        try:
            for index in range(KEYS_PER_REPLICA):
                key, value = side.new_key(name=f"{prefix}-{index}", application_id=app["id"])
                values[key["id"]] = value
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=generate, args=(side, prefix))
               for side, prefix in ((api, "second"), (first_side, "first"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(values) == 2 * KEYS_PER_REPLICA
    for value in values.values():
        assert_allowed(eventually(lambda: api.get("/menu", key=value), 200))

    # A revoke on the second replica reaches authz_server, which follows the first.
    key_id, value = next(iter(values.items()))
    assert second_replica.revoke(key_id)["status"] == "REVOKED"
    eventually(lambda: api.get("/menu", key=value), 401, "api_key_revoked")
    # Both replicas read the same state.
    assert pg_live.admin.get_key(key_id)["status"] == "REVOKED"
