"""The REST app over the real Dispatcher and services, on a migrated temporary SQLite
file with bootstrap credentials: one round trip through every layer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from admin_api import bootstrap
from admin_api.app import open_store
from admin_api.dispatch import Dispatcher
from admin_api.transports.rest import create_app
from tests.admin_api.transports.rest.test_problems import assert_problem

PIZZASHACK = {
    "name": "PizzaShack",
    "version": "1.0.0",
    "context": "/pizzashack",
    "production_endpoint": "http://127.0.0.1:8091",
    "sandbox_endpoint": "http://127.0.0.1:8092",
    "resources": [{"method": "GET", "path": "/menu"}],
}


@pytest.fixture
def real(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    store = open_store(f"sqlite:///{tmp_path / 'portcullis.db'}")
    tokens = bootstrap.ensure_credentials(store, tmp_path / "admin-token", tmp_path / "sync-token")
    assert tokens.admin_token and tokens.sync_token
    try:
        with TestClient(create_app(Dispatcher(store)), raise_server_exceptions=False) as client:
            yield client, {"Authorization": f"Bearer {tokens.admin_token}"}, tokens.sync_token
    finally:
        store.db.dispose()


def test_create_get_list_update_publish_delete(real: tuple[TestClient, dict[str, str], str]) -> None:
    client, auth, _ = real
    created = client.post("/v1/apis", json=PIZZASHACK, headers=auth)
    assert created.status_code == 201, created.text
    api = created.json()
    assert api["lifecycle_state"] == "CREATED"
    assert api["base_path"] == "/pizzashack/1.0.0"
    assert api["organization_id"] == "default"
    assert api["resources"] == [{"method": "GET", "path": "/menu", "open": False, "scopes": [], "throttling_policy": ""}]

    fetched = client.get(f"/v1/apis/{api['id']}", headers=auth)
    assert fetched.status_code == 200 and fetched.json() == api

    listed = client.get("/v1/apis?page_size=10", headers=auth)
    assert listed.status_code == 200
    assert [a["id"] for a in listed.json()["apis"]] == [api["id"]]

    updated = client.patch(f"/v1/apis/{api['id']}", json={"description": "Pizza!"}, headers=auth)
    assert updated.status_code == 200, updated.text
    assert updated.json()["description"] == "Pizza!" and updated.json()["name"] == "PizzaShack"

    illegal = client.post(f"/v1/apis/{api['id']}/lifecycle", json={"target_state": "RETIRED"}, headers=auth)
    assert "PUBLISHED" in assert_problem(illegal, 409, "failed_precondition", "target_state")["detail"]
    published = client.post(f"/v1/apis/{api['id']}/lifecycle", json={"target_state": "PUBLISHED"}, headers=auth)
    assert published.status_code == 200 and published.json()["lifecycle_state"] == "PUBLISHED"

    key = client.post(f"/v1/apis/{api['id']}/api-keys", json={"name": "web"}, headers=auth)
    assert key.status_code == 201, key.text
    value = key.json()["value"]
    keys = client.get(f"/v1/api-keys?api_id={api['id']}", headers=auth).json()["api_keys"]
    assert [k["environment"] for k in keys] == ["PRODUCTION"]
    assert value not in keys[0]["masked_value"]

    again = client.post("/v1/apis", json=PIZZASHACK, headers=auth)
    assert again.status_code == 409, again.text

    deleted = client.delete(f"/v1/apis/{api['id']}", headers=auth)
    assert deleted.status_code == 204 and deleted.content == b""
    assert_problem(client.get(f"/v1/apis/{api['id']}", headers=auth), 404, "not_found", "id")


def test_service_validation_errors_come_back_as_problems(real: tuple[TestClient, dict[str, str], str]) -> None:
    client, auth, _ = real
    response = client.post("/v1/apis", json={**PIZZASHACK, "context": "no-leading-slash"}, headers=auth)
    assert_problem(response, 400, "invalid_argument", "context")


@pytest.mark.parametrize("which", ["sync", "unknown"])
def test_only_the_admin_token_is_accepted(real: tuple[TestClient, dict[str, str], str], which: str) -> None:
    client, _, sync_token = real
    token = sync_token if which == "sync" else "pca_not-a-token"
    response = client.get("/v1/apis", headers={"Authorization": f"Bearer {token}"})
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == 'Bearer realm="portcullis-admin"'


def test_an_apis_openapi_document_over_rest(real: tuple[TestClient, dict[str, str], str]) -> None:
    client, auth, _ = real
    api = client.post("/v1/apis", json=PIZZASHACK, headers=auth).json()
    url = f"/v1/apis/{api['id']}/definition"
    assert_problem(client.get(url, headers=auth), 404, "not_found", None)
    document = "openapi: 3.0.3\ninfo: {title: PizzaShack, version: 1.0.0}\npaths: {/menu: {get: {summary: Menu}}}\n"
    kept = client.put(url, json={"document": document}, headers=auth)
    assert kept.status_code == 200, kept.text
    assert {k: kept.json()[k] for k in ("api_id", "format", "spec_version", "title")} == {
        "api_id": api["id"], "format": "yaml", "spec_version": "3.0.3", "title": "PizzaShack"}
    assert client.get(url, headers=auth).json()["document"] == document
    too_large = client.put(url, json={"document": document + "x: '" + "a" * 600_000 + "'\n"}, headers=auth)
    problem = assert_problem(too_large, 413, "payload_too_large", "document")
    assert "at most 524288" in problem["detail"]
    assert_problem(client.put(url, json={"document": "swagger: '1.2'\n"}, headers=auth), 400, "invalid_argument",
                   "document")
    assert client.delete(url, headers=auth).status_code == 204
    assert_problem(client.get(url, headers=auth), 404, "not_found")
