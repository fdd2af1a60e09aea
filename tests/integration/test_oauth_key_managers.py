"""Two issuers at once through Envoy: the resident key manager and the fake IdP as an
external one. Tokens of each on APIs that allow it and on APIs that do not; a disabled
key manager; a key manager added after start-up (reaches authz_server through Watch)."""

from __future__ import annotations

from typing import Any

import pytest

from mesh.components import AUTHZ_SERVER
from tests.integration.conftest import LiveMesh
from tests.integration.endpoints import http_get
from tests.fake_idp import FakeIdp
from tests.integration.gateway import assert_allowed, eventually
from tests.integration.oauth import (
    RESIDENT_NAME,
    assert_token_denied,
    call,
    generate_key,
    mapped_client,
    oauth_api,
    public_url,
    register_external,
    resident_token,
    subscribed_app,
)
from tests.integration.scenario import PublishedApi

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def both_api(live: LiveMesh, external_km: dict[str, Any]) -> PublishedApi:
    return oauth_api(live)  # empty allow-list: every key manager


@pytest.fixture(scope="module")
def resident_only_api(live: LiveMesh) -> PublishedApi:
    return oauth_api(live, allowed_key_managers=[RESIDENT_NAME])


@pytest.fixture(scope="module")
def external_only_api(live: LiveMesh, external_km: dict[str, Any]) -> PublishedApi:
    return oauth_api(live, allowed_key_managers=[external_km["name"]])


@pytest.fixture(scope="module")
def resident_token_for_all(live: LiveMesh, both_api: PublishedApi, resident_only_api: PublishedApi,
                           external_only_api: PublishedApi) -> str:
    """A resident JWT of an application subscribed to all three APIs."""
    app = subscribed_app(live, both_api)
    for api in (resident_only_api, external_only_api):
        live.admin.subscribe(app["id"], api.id)
    return resident_token(live, generate_key(live, app))


@pytest.fixture(scope="module")
def external_token_for_all(live: LiveMesh, fake_idp: FakeIdp, external_km: dict[str, Any], both_api: PublishedApi,
                           resident_only_api: PublishedApi, external_only_api: PublishedApi) -> str:
    """A fake IdP JWT (cid, scp array) of an application subscribed to all three APIs."""
    app = subscribed_app(live, both_api)
    for api in (resident_only_api, external_only_api):
        live.admin.subscribe(app["id"], api.id)
    return fake_idp.access_token(mapped_client(live, fake_idp, external_km, app))


def test_the_resident_key_manager_exists_and_answers_discovery(live: LiveMesh) -> None:
    resident = live.admin.resident_key_manager()
    assert resident["name"] == RESIDENT_NAME
    assert resident["enabled"] is True
    assert resident["issuer"] == public_url(live)
    document = http_get(live.settings, public_url(live) + "/.well-known/openid-configuration").json()
    assert document["issuer"] == public_url(live)
    expected = {"token_endpoint": "token", "authorization_endpoint": "authorize", "introspection_endpoint": "introspect",
                "revocation_endpoint": "revoke", "jwks_uri": "jwks"}
    for member, path in expected.items():
        assert document[member] == public_url(live) + "/oauth2/" + path, member


def test_the_external_key_manager_is_filled_from_discovery(external_km: dict[str, Any], fake_idp: FakeIdp) -> None:
    assert external_km["issuer"] == fake_idp.issuer
    assert external_km["jwks_uri"] == fake_idp.base_url + "/jwks"
    assert external_km["introspection_endpoint"] == fake_idp.base_url + "/introspect"
    assert external_km["registration_endpoint"] == fake_idp.base_url + "/register"
    # Write-only credentials never come back.
    assert external_km["introspection_client_secret_set"] is True
    assert not external_km.get("introspection_client_secret")
    assert external_km["registration_access_token_set"] is True
    assert not external_km.get("registration_access_token")


def test_a_resident_token_is_accepted_where_the_resident_key_manager_is_allowed(
    both_api: PublishedApi, resident_only_api: PublishedApi, resident_token_for_all: str
) -> None:
    for api in (both_api, resident_only_api):
        assert_allowed(eventually(lambda: call(api, resident_token_for_all), 200))


def test_an_external_token_is_accepted_where_its_key_manager_is_allowed(
    both_api: PublishedApi, external_only_api: PublishedApi, external_token_for_all: str
) -> None:
    for api in (both_api, external_only_api):
        assert_allowed(eventually(lambda: call(api, external_token_for_all), 200))


def test_a_resident_token_on_an_external_only_api_is_refused(
    external_only_api: PublishedApi, resident_token_for_all: str
) -> None:
    response = eventually(lambda: call(external_only_api, resident_token_for_all), 403, "key_manager_not_allowed")
    assert_token_denied(response, 403, "key_manager_not_allowed")


def test_an_external_token_on_a_resident_only_api_is_refused(
    resident_only_api: PublishedApi, external_token_for_all: str
) -> None:
    response = eventually(lambda: call(resident_only_api, external_token_for_all), 403, "key_manager_not_allowed")
    assert_token_denied(response, 403, "key_manager_not_allowed")


def test_a_disabled_key_manager_is_refused_until_enabled_again(
    live: LiveMesh, external_km: dict[str, Any], both_api: PublishedApi, external_token_for_all: str
) -> None:
    eventually(lambda: call(both_api, external_token_for_all), 200)
    live.admin.update_key_manager(external_km["id"], enabled=False)
    try:
        response = eventually(lambda: call(both_api, external_token_for_all), 401, "key_manager_disabled")
        assert_token_denied(response, 401, "key_manager_disabled")
    finally:
        live.admin.update_key_manager(external_km["id"], enabled=True)
    assert_allowed(eventually(lambda: call(both_api, external_token_for_all), 200))


def test_a_key_manager_added_after_start_up_reaches_authz_server_without_a_restart(live: LiveMesh) -> None:
    authz_pid = live.mesh[AUTHZ_SERVER].pid
    with FakeIdp() as late:
        api = oauth_api(live)
        app = subscribed_app(live, api)
        client = late.add_client()
        token = late.access_token(client.client_id)
        # Nobody knows this issuer yet.
        assert_token_denied(call(api, token), 401, "token_issuer_unknown")
        key_manager = register_external(live, late, token_handling={"accepts_jwt": True, "accepts_reference_tokens": False})
        try:
            live.admin.map_application_key(app["id"], environment="PRODUCTION", key_manager_id=key_manager["id"],
                                           consumer_key=client.client_id)
            assert_allowed(eventually(lambda: call(api, token), 200))
        finally:
            # This provider goes away with the test: its key manager must not linger enabled.
            live.admin.update_key_manager(key_manager["id"], enabled=False)
        eventually(lambda: call(api, token), 401, "key_manager_disabled")
    assert live.mesh[AUTHZ_SERVER].pid == authz_pid, "authz_server was restarted"


def test_an_unknown_issuer_is_refused(live: LiveMesh, both_api: PublishedApi) -> None:
    with FakeIdp() as stranger:
        token = stranger.access_token("someone")
    assert_token_denied(call(both_api, token), 401, "token_issuer_unknown")


def test_a_bearer_credential_that_is_no_token_is_malformed(both_api: PublishedApi) -> None:
    assert_token_denied(call(both_api, "definitely-not-a-token"), 401, "token_malformed")
    assert_token_denied(call(both_api, "a.b.c"), 401, "token_malformed")


def test_an_oauth2_api_without_a_credential_challenges_for_a_bearer_token(both_api: PublishedApi) -> None:
    response = both_api.get("/menu")
    assert response.status_code == 401
    assert response.headers.get("www-authenticate", "").startswith('Bearer realm="portcullis"')
    assert response.json()["code"] == "credential_missing"
