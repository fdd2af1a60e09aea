"""Application keys end to end: multiple consumer secrets (the session mesh runs with
PORTCULLIS_MULTIPLE_CONSUMER_SECRETS=true and a maximum), role-based restriction of key
generation per key manager, and Dynamic Client Registration at an external key manager."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from tests.integration.conftest import MAX_CONSUMER_SECRETS, LiveMesh
from tests.fake_idp import FakeIdp
from tests.integration.gateway import assert_allowed, eventually
from tests.integration.oauth import (
    AppKey,
    call,
    client_credentials,
    generate_key,
    oauth_api,
    register_external,
    resident_token,
    subscribed_app,
    token_response,
)
from tests.integration.scenario import PublishedApi, unique

pytestmark = pytest.mark.integration

# Key managers of short-lived providers take no opaque tokens: the session fake IdP's
# `fidp_` tokens must only ever go to its own key manager.
JWT_ONLY = {"accepts_jwt": True, "accepts_reference_tokens": False}


@pytest.fixture(scope="module")
def api(live: LiveMesh) -> PublishedApi:
    return oauth_api(live)


# --- multiple consumer secrets ------------------------------------------------------------
def test_every_secret_obtains_tokens_and_is_listed_masked(live: LiveMesh, api: PublishedApi) -> None:
    key = generate_key(live, subscribed_app(live, api), secret_description="first")
    second = live.admin.create_consumer_secret(key.id, description="second")
    assert second["value"].startswith("pcsec_")
    for secret in (key.consumer_secret, second["value"]):
        token = client_credentials(live, key, secret=secret)["access_token"]
        assert_allowed(eventually(lambda: call(api, token), 200))
    listed = live.admin.list_consumer_secrets(key.id)
    assert {secret["description"] for secret in listed} == {"first", "second"}
    for secret in listed:
        assert secret["masked_value"] and secret["masked_value"] not in (key.consumer_secret, second["value"])
        assert "value" not in secret


def test_a_wrong_secret_obtains_no_token(live: LiveMesh, api: PublishedApi) -> None:
    key = generate_key(live, subscribed_app(live, api))
    response = token_response(live, key.consumer_key, "pcsec_" + "x" * 43, grant_type="client_credentials")
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"


def test_a_deleted_secret_obtains_no_token_and_its_tokens_stay_valid(live: LiveMesh, api: PublishedApi) -> None:
    key = generate_key(live, subscribed_app(live, api))
    extra = live.admin.create_consumer_secret(key.id, description="temporary")
    token = client_credentials(live, key, secret=extra["value"])["access_token"]
    live.admin.delete_consumer_secret(key.id, extra["secret"]["id"])
    refused = token_response(live, key.consumer_key, extra["value"], grant_type="client_credentials")
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"] == "invalid_client"
    assert_allowed(eventually(lambda: call(api, token), 200))
    client_credentials(live, key)  # the other secret still works


def test_an_expired_secret_obtains_no_token(live: LiveMesh, api: PublishedApi) -> None:
    """No process takes a fake clock: the stored expiry moves back two days instead
    (admin_api reads the secret from the database on every token request)."""
    key = generate_key(live, subscribed_app(live, api))
    expiring = live.admin.create_consumer_secret(key.id, description="one day", validity_days=1)
    assert expiring["secret"]["expires_at"]
    client_credentials(live, key, secret=expiring["value"])
    _move_secret_expiry_back(live.settings.data_dir / "portcullis.db", expiring["secret"]["id"], timedelta(days=2))
    refused = token_response(live, key.consumer_key, expiring["value"], grant_type="client_credentials")
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"] == "invalid_client"
    client_credentials(live, key)  # the unexpired one still works


def test_the_maximum_number_of_secrets_is_enforced(live: LiveMesh, api: PublishedApi) -> None:
    key = generate_key(live, subscribed_app(live, api))
    for number in range(2, MAX_CONSUMER_SECRETS + 1):
        live.admin.create_consumer_secret(key.id, description=f"secret {number}")
    assert len(live.admin.list_consumer_secrets(key.id)) == MAX_CONSUMER_SECRETS
    response = live.admin.http.post(f"/v1/application-keys/{key.id}/secrets", json={"description": "one too many"})
    assert response.status_code in (400, 409), response.text  # FAILED_PRECONDITION or INVALID_ARGUMENT
    assert str(MAX_CONSUMER_SECRETS) in response.text
    assert len(live.admin.list_consumer_secrets(key.id)) == MAX_CONSUMER_SECRETS
    # Deleting one makes room again.
    first = live.admin.list_consumer_secrets(key.id)[0]
    live.admin.delete_consumer_secret(key.id, first["id"])
    live.admin.create_consumer_secret(key.id, description="replacement")


def _move_secret_expiry_back(database: Path, secret_id: str, by: timedelta) -> None:
    # Written back in the exact text form admin_api stored, whatever that is.
    connection = sqlite3.connect(database)
    try:
        with connection:
            (stored,) = connection.execute("SELECT expires_at FROM consumer_secrets WHERE id = ?", (secret_id,)).fetchone()
            assert stored, "the secret was created with a validity, it must have an expiry"
            moved = datetime.fromisoformat(stored) - by
            text = moved.isoformat(sep=" " if " " in stored else "T")
            updated = connection.execute("UPDATE consumer_secrets SET expires_at = ? WHERE id = ?", (text, secret_id)).rowcount
            assert updated == 1
    finally:
        connection.close()


# --- role-based key generation --------------------------------------------------------------
@pytest.fixture
def resident(live: LiveMesh) -> Iterator[dict[str, Any]]:
    """The resident key manager; its role restriction is cleared again afterwards."""
    resident = live.admin.resident_key_manager()
    yield resident
    live.admin.update_key_manager(resident["id"], key_generation_allowed_roles=[], key_generation_denied_roles=[])


def _generate_as(live: LiveMesh, owner: str) -> Any:
    app = live.admin.create_application(unique("role-app"), owner=owner)
    return live.admin.http.post(f"/v1/applications/{app['id']}/keys", json={"environment": "PRODUCTION"})


def test_an_allow_list_of_roles_restricts_key_generation(live: LiveMesh, resident: dict[str, Any], api: PublishedApi) -> None:
    gold = unique("gold")
    member = live.admin.create_user(unique("member"), "correct horse battery", [gold])
    outsider = live.admin.create_user(unique("outsider"), "correct horse battery", ["bronze"])
    earlier = generate_key(live, subscribed_app(live, api, owner=outsider["username"]))
    live.admin.update_key_manager(resident["id"], key_generation_allowed_roles=[gold])

    assert _generate_as(live, member["username"]).status_code == 201
    refused = _generate_as(live, outsider["username"])
    assert refused.status_code == 403, refused.text
    # An owner that is no user has no roles.
    assert _generate_as(live, unique("ghost")).status_code == 403
    # Keys generated before the restriction stay valid.
    assert_allowed(eventually(lambda: call(api, resident_token(live, earlier)), 200))


def test_a_deny_list_of_roles_restricts_key_generation(live: LiveMesh, resident: dict[str, Any]) -> None:
    banned = unique("banned")
    blocked = live.admin.create_user(unique("blocked"), "correct horse battery", [banned, "other"])
    fine = live.admin.create_user(unique("fine"), "correct horse battery", ["other"])
    live.admin.update_key_manager(resident["id"], key_generation_denied_roles=[banned])
    refused = _generate_as(live, blocked["username"])
    assert refused.status_code == 403, refused.text
    assert _generate_as(live, fine["username"]).status_code == 201


def test_allowed_and_denied_roles_together_are_refused(live: LiveMesh, resident: dict[str, Any]) -> None:
    response = live.admin.http.patch(f"/v1/key-managers/{resident['id']}",
                                     json={"key_generation_allowed_roles": ["a"], "key_generation_denied_roles": ["b"]})
    assert response.status_code == 400, response.text
    assert "never both" in response.text
    created = live.admin.http.post("/v1/key-managers", json={
        "name": unique("both-lists"), "type": "OIDC", "enabled": True, "issuer": "http://127.0.0.1:9/never",
        "jwks_uri": "http://127.0.0.1:9/jwks", "token_handling": {"accepts_jwt": True},
        "key_generation_allowed_roles": ["a"], "key_generation_denied_roles": ["b"]})
    assert created.status_code == 400, created.text
    assert "never both" in created.text


# --- Dynamic Client Registration ------------------------------------------------------------
def test_generating_keys_at_a_dcr_key_manager_creates_the_client_there(live: LiveMesh) -> None:
    with FakeIdp() as idp:
        key_manager = register_external(live, idp, consumer_app_creation_enabled=True, token_handling=JWT_ONLY)
        try:
            api = oauth_api(live, allowed_key_managers=[key_manager["name"]])
            app = subscribed_app(live, api)
            answer = live.admin.generate_application_key(
                app["id"], environment="PRODUCTION", key_manager_id=key_manager["id"],
                settings={"grant_types": ["client_credentials"]})
            key = AppKey(app, answer["key"], answer["consumer_secret"], answer.get("secret", {}))
            assert key.key["origin"] == "GENERATED"

            assert len(idp.registrations) == 1
            registration = idp.registrations[0]
            assert registration.headers["authorization"] == f"Bearer {idp.initial_access_token}"
            assert isinstance(registration.body, dict)
            assert "client_credentials" in registration.body.get("grant_types", [])
            assert key.consumer_key in idp.clients
            assert idp.clients[key.consumer_key].client_secret == key.consumer_secret

            # The client obtains a token at the IdP's token endpoint; it works through Envoy.
            issued = httpx.post(idp.base_url + "/token", data={"grant_type": "client_credentials"},
                                auth=(key.consumer_key, key.consumer_secret), trust_env=False)
            assert issued.status_code == 200, issued.text
            token = issued.json()["access_token"]
            assert_allowed(eventually(lambda: call(api, token), 200))
        finally:
            # This provider goes away with the test: its key manager must not linger enabled.
            live.admin.update_key_manager(key_manager["id"], enabled=False)
