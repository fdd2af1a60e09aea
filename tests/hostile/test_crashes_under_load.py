"""Faults with real processes, each on a mesh of its own (they kill things):

- authz_server SIGKILLed under a load of requests: nothing without a valid credential
  reaches a backend; after its restart it has every change made while it was down.
- admin_api SIGKILLed in the middle of a stream of writes: every acknowledged write is
  there after the restart, and the change log (read back through Watch) has no gaps.
- an external key manager that is down: cached keys keep working, introspection fails
  closed with key_manager_unavailable (authz_server's own answer, within Envoy's timeout).

Bounded: fixed numbers of requests and writes, waits with deadlines."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import grpc
import httpx
import pytest

from mesh.components import ADMIN_API, AUTHZ_SERVER
from portcullis.sync.v1 import sync_pb2, sync_pb2_grpc
from tests.integration.admin_client import AdminCallFailed
from tests.integration.conftest import SESSION_ENV, LiveMesh, start_live_mesh
from tests.integration.endpoints import admin_client, grpc_channel, http_client
from tests.fake_idp import FakeIdp
from tests.integration.gateway import assert_allowed, assert_denied, eventually
from tests.integration.oauth import call, mapped_client, oauth_api, register_external, subscribed_app
from tests.integration.scenario import create_api, ready_key, unique

pytestmark = pytest.mark.integration

RECONNECT_SECONDS = 20.0


@pytest.fixture
def own_mesh(tmp_path: Path) -> Iterator[LiveMesh]:
    yield from start_live_mesh(tmp_path / "mesh", SESSION_ENV)


def _backend_requests(live: LiveMesh) -> int:
    return live.backend_requests()


# --- authz_server killed under load ------------------------------------------------------------


def test_authz_server_killed_under_load_lets_nothing_unauthorised_through_and_catches_up(own_mesh: LiveMesh) -> None:
    live = own_mesh
    api = create_api(live)
    _key, valid, _app = ready_key(api)
    doomed, doomed_value, _ = ready_key(api)
    eventually(lambda: api.get("/menu", key=doomed_value), 200)
    eventually(lambda: api.get("/menu", key=valid), 200)

    kinds = ["valid", "invalid", "missing", "doomed-later"]
    results: list[tuple[str, int, bool, str | None]] = []
    lock = threading.Lock()

    def one(n: int, http: httpx.Client) -> None:
        kind = kinds[n % len(kinds)]
        headers = {"valid": {"apikey": valid}, "invalid": {"apikey": "pck_" + "Q" * 43}, "missing": {},
                   "doomed-later": {"apikey": doomed_value}}[kind]
        response = http.get(api.base_path + "/menu", headers=headers)
        with lock:
            results.append((kind, response.status_code, "x-backend-environment" in response.headers,
                            response.headers.get("x-portcullis-reason")))

    before = _backend_requests(live)
    authz = live.mesh[AUTHZ_SERVER]
    with http_client(live.settings, base_url=live.gateway_url) as http:
        with ThreadPoolExecutor(max_workers=8) as pool:
            first = [pool.submit(one, n, http) for n in range(160)]
            authz.kill()                       # mid-load: calls in flight lose their answer
            # While it is down: one key revoked, one key created.
            live.admin.revoke(doomed["id"])
            _fresh, fresh_value, _ = ready_key(api)
            during = [pool.submit(one, n, http) for n in range(160, 240)]
            for future in first + during:
                future.result()
    reached_backend = sum(1 for _, _, reached, _ in results if reached)
    # Exactly the answers that came from a backend went to one: nothing else got through.
    assert _backend_requests(live) - before == reached_backend
    # The doomed key was valid before the kill; from here on it is revoked everywhere.
    authz.start()
    authz.wait_ready()
    eventually(lambda: api.get("/menu", key=doomed_value), 401, "api_key_revoked", timeout=RECONNECT_SECONDS)
    assert_allowed(eventually(lambda: api.get("/menu", key=fresh_value), 200))
    assert_allowed(api.get("/menu", key=valid))
    assert_denied(api.get("/menu", key="pck_" + "Q" * 43), 401, "api_key_invalid")

    assert len(results) == 240
    for kind, status, reached, reason in results:
        if kind in ("invalid", "missing"):
            assert not reached, f"a {kind} credential reached a backend ({status} {reason})"
            assert (status, reason) in ((401, "api_key_invalid"), (401, "credential_missing"), (503, "authz_unavailable")), \
                (kind, status, reason)
        elif not reached:
            assert (status, reason) in ((503, "authz_unavailable"), (401, "api_key_revoked")), (kind, status, reason)
    assert any(status == 503 for _, status, _, _ in results), "the kill happened during the load"


# --- admin_api killed in the middle of a stream of writes ---------------------------------------


def _change_log_revisions(database: Path) -> list[int]:
    with sqlite3.connect(database) as connection:
        revisions = [row[0] for row in connection.execute("SELECT revision FROM change_log ORDER BY revision")]
    connection.close()
    return revisions


def _watch_revisions(live: LiveMesh, from_revision: int, until: int) -> list[int]:
    """Change revisions replayed by Watch after `from_revision`, up to `until`."""
    token = live.settings.sync_token_file.read_text(encoding="utf-8").strip()
    revisions: list[int] = []
    with grpc_channel(live.settings, f"{live.settings.host}:{live.settings.admin_grpc_port}") as channel:
        stream = sync_pb2_grpc.PolicySyncStub(channel).Watch(
            sync_pb2.WatchRequest(from_revision=from_revision, replica="hostile-faults"),
            metadata=[("authorization", f"Bearer {token}")], timeout=20)
        try:
            for event in stream:
                kind = event.WhichOneof("event")
                assert kind not in ("snapshot_begin", "snapshot_chunk"), "a replay was expected, not a snapshot"
                if kind in ("upsert", "delete"):
                    revisions.append(event.revision)
                if revisions and revisions[-1] >= until or (kind == "heartbeat" and event.revision <= (revisions or [from_revision])[-1]):
                    break
        finally:
            stream.cancel()
    return revisions


def test_admin_api_killed_mid_writes_keeps_every_acknowledged_write_and_no_revision_gap(own_mesh: LiveMesh) -> None:
    live = own_mesh
    database = live.settings.data_dir / "portcullis.db"
    start_revision = max(_change_log_revisions(database))
    acknowledged: list[str] = []
    lock = threading.Lock()
    enough = threading.Event()

    def writer(worker: int) -> None:
        client = admin_client(live.settings)
        try:
            for n in range(200):
                try:
                    app = client.create_application(f"w{worker}-{n}-{unique('a')}")
                except (httpx.HTTPError, AdminCallFailed):
                    return  # admin_api is gone: the write was not acknowledged
                with lock:
                    acknowledged.append(app["id"])
                    if len(acknowledged) >= 40:
                        enough.set()
        finally:
            client.close()

    admin = live.mesh[ADMIN_API]
    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    assert enough.wait(30), "the writers got going"
    admin.kill()  # SIGKILL in the middle of the stream: writes are in flight
    for thread in threads:
        thread.join(30)
    admin.start()
    admin.wait_ready()

    client = admin_client(live.settings)
    try:
        for app_id in acknowledged:
            client.call("GET", f"/v1/applications/{app_id}")   # 200, or AdminCallFailed names it
        # A write after the restart gets the next revision.
        client.create_application(unique("after-restart"))
    finally:
        client.close()

    revisions = _change_log_revisions(database)
    assert revisions == list(range(revisions[0], revisions[-1] + 1)), "the change log has a gap"
    assert revisions[-1] >= start_revision + len(acknowledged) + 1
    replayed = _watch_revisions(live, start_revision, revisions[-1])
    assert replayed == list(range(start_revision + 1, revisions[-1] + 1)), "Watch replay has a gap"


# --- an external key manager that is down ---------------------------------------------------------


def test_key_manager_down_cached_keys_work_and_introspection_fails_closed(own_mesh: LiveMesh) -> None:
    live = own_mesh
    with FakeIdp() as idp:
        key_manager = register_external(live, idp)
        api = oauth_api(live)
        app = subscribed_app(live, api)
        jwt_client = mapped_client(live, idp, key_manager, app)
        opaque_client = idp.add_client(token_format="opaque")
        live.admin.map_application_key(subscribed_app(live, api)["id"], environment="PRODUCTION",
                                       key_manager_id=key_manager["id"], consumer_key=opaque_client.client_id)
        token = idp.access_token(jwt_client)
        assert_allowed(eventually(lambda: call(api, token), 200))          # JWKS fetched and cached
        opaque = idp.opaque_token(opaque_client.client_id)
        assert_allowed(eventually(lambda: call(api, opaque), 200))
        # Slow (past authz_server's 0.3 s budget) or garbage: authz_server's own 503, never
        # Envoy's authz_unavailable, and the cached JWT keys keep working meanwhile.
        for mode in ("slow", "garbage", "error"):
            idp.introspection_mode = mode  # type: ignore[assignment]
            assert_denied(call(api, idp.opaque_token(opaque_client.client_id)), 503, "key_manager_unavailable")
            assert_allowed(call(api, token))
        idp.introspection_mode = "normal"
        fresh_opaque = idp.opaque_token(opaque_client.client_id)
        later_token = idp.access_token(jwt_client)
    # The IdP is gone (connection refused) from here on.
    assert_allowed(call(api, token))
    assert_allowed(call(api, later_token)), "a new token under a cached kid needs no fetch"
    assert_denied(call(api, fresh_opaque), 503, "key_manager_unavailable")
