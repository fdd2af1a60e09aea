"""The mesh with PORTCULLIS_ADMIN_REPLICAS=2 on a real PostgreSQL, as `make run` starts it:
both replicas start at once on an empty database and bootstrap it once; then one replica
is killed with SIGKILL while both take writes. Every acknowledged write is there, the
Watch streams resume on the other replica from their revision (no snapshot), Envoy's xDS
moves to it too, and decisions through Envoy never stop meanwhile."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from admin_api.bootstrap import BOOTSTRAP_ADMIN_SUBJECT, GATEWAY_SUBJECT, SYNC_SUBJECT
from admin_api.db.backend_jwt_models import BackendSigningKey
from admin_api.db.engine import open_database
from admin_api.db.models import AdminCredential, KeyManager, Organization
from admin_api.db.oauth_models import SigningKey
from mesh import components
from tests.integration.admin_client import AdminClient
from tests.integration.conftest import SESSION_ENV, LiveMesh, client_verify, start_live_mesh
from tests.integration.gateway import assert_allowed, eventually, wait_until
from tests.integration.scenario import create_api

pytestmark = pytest.mark.integration

WRITES_BEFORE_KILL = 5      # acknowledged through the replica that is then killed
WRITES_AFTER_KILL = 5       # acknowledged through the survivor after the kill
WRITE_WAIT_SECONDS = 120.0  # generous: the machine is shared


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory, postgres_server) -> Iterator[tuple[LiveMesh, str]]:
    url = postgres_server.create_database(migrated=False)   # both replicas find it empty
    try:
        for live in start_live_mesh(tmp_path_factory.mktemp("replicas-mesh"), SESSION_ENV,
                                    database_url_override=url, admin_replicas=2):
            yield live, url
    finally:
        postgres_server.drop_database(url)


def replica_client(live: LiveMesh, index: int) -> AdminClient:
    own = live.settings.admin_replica(index)
    return AdminClient(f"{own.rest_scheme}://{own.host}:{own.admin_rest_port}", live.settings.admin_token_file,
                       verify=client_verify(live.settings))


def log_of(live: LiveMesh, name: str) -> Path:
    return Path(live.settings.data_dir) / "logs" / f"{name}.log"


def test_replicas_started_at_once_bootstrap_the_empty_database_once(replicated: tuple[LiveMesh, str]) -> None:
    live, url = replicated
    assert [component.name for component in live.mesh if component.name.startswith("admin_api")] == [
        "admin_api", "admin_api-1"]
    assert live.mesh.dead() == []
    db = open_database(url)
    try:
        with db.read_session() as session:
            subjects = Counter(session.scalars(select(AdminCredential.subject)).all())
            assert subjects == {BOOTSTRAP_ADMIN_SUBJECT: 1, SYNC_SUBJECT: 1, GATEWAY_SUBJECT: 1}
            assert session.scalar(select(func.count()).select_from(Organization)) == 1
            assert session.scalar(select(func.count()).select_from(KeyManager)) == 1      # the resident one
            active_backend = Counter(session.scalars(
                select(BackendSigningKey.algorithm).where(BackendSigningKey.retired_at.is_(None))).all())
            assert active_backend and set(active_backend.values()) == {1}
            active_resident = Counter(session.scalars(
                select(SigningKey.algorithm).where(SigningKey.retired_at.is_(None))).all())
            assert active_resident and set(active_resident.values()) == {1}
    finally:
        db.engine.dispose()
    # The one admin token (its file written by whichever replica made it) works on both.
    for index in (0, 1):
        client = replica_client(live, index)
        try:
            client.call("GET", "/v1/apis")
        finally:
            client.close()
    for name in ("admin_api", "admin_api-1"):
        assert "Traceback" not in log_of(live, name).read_text(encoding="utf-8", errors="replace"), name


def test_a_replica_killed_during_writes(replicated: tuple[LiveMesh, str]) -> None:
    live, _url = replicated
    settings = live.settings
    first, second = replica_client(live, 0), replica_client(live, 1)
    api = create_api(live)                     # through replica 0
    app, _subscription = api.subscribed_app()
    _probe_key, probe = api.new_key(application_id=app["id"])
    assert_allowed(eventually(lambda: api.get("/menu", key=probe), 200))
    authz_log = log_of(live, components.AUTHZ_SERVER)
    workers = live.mesh.authz_workers
    survivor = f"{settings.host}:{settings.admin_grpc_port + 1}"
    # authz_server follows replica 0, the first address it was given, on every worker.
    assert authz_log.read_text(encoding="utf-8").count(
        f"policy sync connected to {settings.host}:{settings.admin_grpc_port} from revision") >= workers

    stopping = threading.Event()
    decisions: Counter[int] = Counter()
    refused: list[str] = []
    acknowledged: dict[str, dict[str, str]] = {"first": {}, "second": {}}
    write_errors: dict[str, list[str]] = {"first": [], "second": []}

    def traffic() -> None:
        verify = client_verify(settings)
        with httpx.Client(base_url=str(live.gateway.base_url), timeout=10.0, trust_env=False,
                          verify=verify) as gateway:
            while not stopping.is_set():
                response = gateway.get(api.base_path + "/menu", headers={"apikey": probe})
                decisions[response.status_code] += 1
                if response.status_code != 200:
                    refused.append(f"{response.status_code} {response.text[:200]}")

    def write(client: AdminClient, side: str) -> None:
        index = 0
        while not stopping.is_set():
            try:
                key, value = client.generate_key(api.id, f"{side}-{index}", application_id=app["id"])
            except Exception as error:  # noqa: BLE001 - the killed replica's writes fail; counted
                write_errors[side].append(repr(error))
                if side == "first":
                    return          # its replica is gone
                time.sleep(0.1)
                continue
            acknowledged[side][key["id"]] = value
            index += 1

    threads = [threading.Thread(target=traffic, daemon=True),
               threading.Thread(target=write, args=(first, "first"), daemon=True),
               threading.Thread(target=write, args=(second, "second"), daemon=True)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(acknowledged["first"]) >= WRITES_BEFORE_KILL, "writes through replica 0",
                   timeout=WRITE_WAIT_SECONDS)
        log_offset = authz_log.stat().st_size
        live.mesh[components.ADMIN_API].kill()                     # SIGKILL, mid-write
        after_kill = len(acknowledged["second"])
        wait_until(lambda: len(acknowledged["second"]) >= after_kill + WRITES_AFTER_KILL,
                   "writes through replica 1 after the kill", timeout=WRITE_WAIT_SECONDS)
        # Envoy's xDS follows the survivor: an API made after the kill gets its route.
        later = create_api(LiveMesh(live.mesh, second, live.gateway))
        later_app, _ = later.subscribed_app()
        _later_key, later_value = later.new_key(application_id=later_app["id"])
        # Envoy's reconnect back-off is 0.5 s to 5 s, with a refused try on the dead replica.
        assert_allowed(eventually(lambda: later.get("/menu", key=later_value), 200, timeout=30.0))
    finally:
        stopping.set()
        for thread in threads:
            thread.join(30)
    first.close()

    assert write_errors["second"] == []
    assert len(acknowledged["first"]) >= WRITES_BEFORE_KILL
    # Every acknowledged write is in the database (read through the survivor) and reaches
    # authz_server, including those acknowledged by the replica that was killed.
    try:
        for side in ("first", "second"):
            for key_id, value in acknowledged[side].items():
                assert second.get_key(key_id)["status"] == "ACTIVE", (side, key_id)
                assert_allowed(eventually(lambda: api.get("/menu", key=value), 200))
    finally:
        second.close()
    # Decisions never stopped: every call through Envoy during the kill was allowed.
    assert refused == [] and decisions[200] > 0, (decisions, refused[:5])
    # Every worker resumed its Watch on the survivor from a revision it had, no snapshot.
    since_kill = authz_log.read_text(encoding="utf-8")[log_offset:]
    resumed = [int(revision) for revision in re.findall(
        rf"policy sync connected to {re.escape(survivor)} from revision (\d+)", since_kill)]
    assert len(resumed) >= workers and all(revision > 0 for revision in resumed), since_kill[-3000:]
    assert "installed a snapshot" not in since_kill, since_kill[-3000:]
