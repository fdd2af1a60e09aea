"""REST specifics of roles, user tokens and the audit log: problem documents for denied,
unauthenticated and someone else's resources; `GET /v1/audit-records` with its query
filters; the OpenAPI document lists it. (The role table itself runs on REST and gRPC in
tests/admin_api/access/test_roles.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from tests.admin_api.roles_world import OTHER, USERS, World, build_world, stop_world
from tests.admin_api.transports.rest.test_problems import assert_problem


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    world, server = build_world(tmp_path_factory.mktemp("rest-roles"))
    try:
        yield world
    finally:
        stop_world(world, server)


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_role_without_permission_gets_a_403_problem(world: World) -> None:
    response = world.http.post("/v1/apis", json={"name": "X", "version": "1", "context": "/x"},
                               headers=_auth(world.token_of("subscriber")))
    problem = assert_problem(response, 403, "permission_denied")
    assert "subscriber" in problem["detail"]


def test_someone_elses_application_is_a_404_problem_like_a_missing_one(world: World) -> None:
    theirs = world.application(OTHER)
    token = world.token_of("subscriber")
    other = assert_problem(world.http.get(f"/v1/applications/{theirs.id}", headers=_auth(token)), 404, "not_found",
                           "id")
    missing = assert_problem(world.http.get("/v1/applications/0000", headers=_auth(token)), 404, "not_found", "id")
    assert other == {**missing, "detail": missing["detail"].replace("0000", theirs.id)}
    assert OTHER not in other["detail"]


def test_a_subscriber_lists_only_its_own(world: World) -> None:
    world.application(OTHER)
    mine = world.application(USERS["subscriber"])
    listed = world.http.get("/v1/applications", headers=_auth(world.token_of("subscriber")))
    assert listed.status_code == 200
    owners = {a["owner"] for a in listed.json()["applications"]}
    assert owners == {USERS["subscriber"]} and mine.id in {a["id"] for a in listed.json()["applications"]}
    # Asking for someone else's by the owner filter answers nothing, not theirs.
    filtered = world.http.get(f"/v1/applications?owner={OTHER}", headers=_auth(world.token_of("subscriber")))
    assert filtered.status_code == 200 and filtered.json()["applications"] == []


def test_a_revoked_user_token_is_a_401_problem(world: World) -> None:
    token = world.password_token(USERS["publisher"], reference=True)
    assert world.http.get("/v1/apis", headers=_auth(token)).status_code == 200
    revoked = world.http.post("/oauth2/revoke", data={"token": token}, auth=world.reference_client)
    assert revoked.status_code == 200
    response = world.http.get("/v1/apis", headers=_auth(token))
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert token not in response.text


def test_the_audit_endpoint_with_query_filters(world: World) -> None:
    start = (datetime.now(timezone.utc) - timedelta(seconds=2)).isoformat().replace("+00:00", "Z")
    created = world.http.post("/v1/applications", json={"name": world.unique("Audited")},
                              headers=_auth(world.token_of("subscriber")))
    assert created.status_code == 201
    response = world.http.get("/v1/audit-records", params={
        "subject": USERS["subscriber"], "target_kind": "application", "target_id": created.json()["id"],
        "start_time": start, "page_size": "10"}, headers=_auth(world.token_of("admin")))
    assert response.status_code == 200, response.text
    [record] = response.json()["records"]
    assert record["method"] == "portcullis.admin.v1.ApplicationService/CreateApplication"
    assert record["outcome"] == "SUCCEEDED" and record["credential_kind"] == "jwt"
    assert response.headers["cache-control"] == "no-store"
    later = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    none = world.http.get("/v1/audit-records", params={"start_time": later}, headers=_auth(world.token_of("admin")))
    assert none.status_code == 200 and none.json()["records"] == []
    assert_problem(world.http.get("/v1/audit-records?start_time=yesterday", headers=_auth(world.token_of("admin"))),
                   400, "invalid_argument", "start_time")


def test_the_audit_endpoint_is_admin_only(world: World) -> None:
    for role in ("publisher", "creator", "subscriber"):
        assert_problem(world.http.get("/v1/audit-records", headers=_auth(world.token_of(role))), 403,
                       "permission_denied")
    assert_problem(world.http.get("/v1/audit-records"), 401, "unauthenticated")


def test_openapi_lists_the_audit_endpoint(world: World) -> None:
    document = world.http.get("/openapi.json").json()
    assert "get" in document["paths"]["/v1/audit-records"]
