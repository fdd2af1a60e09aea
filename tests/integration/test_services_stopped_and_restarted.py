"""Faults, on a mesh of this module's own: authz_server down (Envoy fails closed),
admin_api down (decisions go on from the last state), admin_api back (changes flow again).
Each test restarts what it stopped."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterator

import pytest

from mesh.components import ADMIN_API, AUTHZ_SERVER
from tests.integration.conftest import LiveMesh, start_live_mesh
from tests.integration.endpoints import admin_client
from tests.integration.gateway import assert_allowed, assert_denied, eventually
from tests.integration.scenario import PublishedApi, create_api, ready_key

pytestmark = pytest.mark.integration

# authz_server reconnects to admin_api with back-off: after a restart of admin_api a
# change may wait for the next attempt, so this wait is longer than plain propagation.
RECONNECT_SECONDS = 20.0


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveMesh]:
    yield from start_live_mesh(tmp_path_factory.mktemp("faults"))


@pytest.fixture(scope="module")
def api_and_key(faulty: LiveMesh) -> tuple[PublishedApi, str]:
    api = create_api(faulty)
    _key, value, _app = ready_key(api)
    eventually(lambda: api.get("/menu", key=value), 200)
    return api, value


def test_authz_server_down_means_envoy_denies(faulty: LiveMesh, api_and_key: tuple[PublishedApi, str]) -> None:
    api, value = api_and_key
    authz = faulty.mesh[AUTHZ_SERVER]
    authz.stop()
    try:
        before = faulty.backend_requests()
        for in_query in (False, True):
            response = api.get("/menu", key=value, in_query=in_query)
            # Fail closed: status_on_error (503) with Envoy's own JSON body.
            assert_denied(response, 503, "authz_unavailable")
        assert_denied(api.get("/echo"), 503, "authz_unavailable")
        assert faulty.backend_requests() == before, "a request reached the backend without a decision"
    finally:
        authz.start()
        authz.wait_ready()
    assert_allowed(eventually(lambda: api.get("/menu", key=value), 200))


def test_admin_api_down_decisions_go_on_and_changes_flow_after_its_restart(
    faulty: LiveMesh, api_and_key: tuple[PublishedApi, str]
) -> None:
    api, value = api_and_key
    key, doomed_value, _app = ready_key(api)
    eventually(lambda: api.get("/menu", key=doomed_value), 200)

    admin_api = faulty.mesh[ADMIN_API]
    admin_api.stop()
    try:
        # The last state keeps deciding: allow, deny and unknown alike.
        assert_allowed(api.get("/menu", key=value))
        assert_allowed(api.get("/menu", key=doomed_value))
        assert_denied(api.get("/menu"), 401, "credential_missing")
        assert_denied(api.get("/menu", key="pck_" + "Z" * 43), 401, "api_key_invalid")
        assert faulty.mesh[AUTHZ_SERVER].is_ready(), "authz_server must keep serving without admin_api"
    finally:
        admin_api.start()
        admin_api.wait_ready()

    # Same data directory: same database and same admin token.
    admin = admin_client(faulty.settings)
    try:
        admin.revoke(key["id"])
    finally:
        admin.close()
    eventually(lambda: api.get("/menu", key=doomed_value), 401, "api_key_revoked", timeout=RECONNECT_SECONDS)
    assert_allowed(api.get("/menu", key=value))


def test_an_expired_key_is_denied(faulty: LiveMesh, api_and_key: tuple[PublishedApi, str]) -> None:
    """No process takes a fake clock, so time passes for the key instead: its stored
    expiry moves two days back while authz_server is down, and the fresh snapshot it
    gets on start carries the past expiry (a new replica always starts from a snapshot)."""
    api, value = api_and_key
    key, expiring_value, _app = ready_key(api, validity_days=1)
    eventually(lambda: api.get("/menu", key=expiring_value), 200)

    authz = faulty.mesh[AUTHZ_SERVER]
    authz.stop()
    try:
        _move_expiry_back(faulty.settings.data_dir / "portcullis.db", key["id"], timedelta(days=2))
    finally:
        authz.start()
        authz.wait_ready()
    eventually(lambda: api.get("/menu", key=expiring_value), 401, "api_key_expired")
    assert_allowed(api.get("/menu", key=value))


def _move_expiry_back(database: Path, key_id: str, by: timedelta) -> None:
    # Written back in the exact text form admin_api stored, whatever that is.
    with sqlite3.connect(database) as connection:
        (stored,) = connection.execute("SELECT expires_at FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        assert stored, "the key was generated with a validity, it must have an expiry"
        moved = datetime.fromisoformat(stored) - by
        text = moved.isoformat(sep=" " if " " in stored else "T")
        updated = connection.execute("UPDATE api_keys SET expires_at = ? WHERE id = ?", (text, key_id)).rowcount
        assert updated == 1
    connection.close()
