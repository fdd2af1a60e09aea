"""The admin API's audience: a resident access token acts on the admin API only when it
carries `portcullis:admin`, which only first-party clients (application keys an admin
marked `settings.first_party`) obtain. The attack this guards: a subscriber registers a
client with a callback of their own, an admin signs in for it on the genuine login page,
and the subscriber holds a token the admin API took with the admin's roles."""

from __future__ import annotations

from typing import Any

import pytest

from portcullis_shared.scopes import ADMIN_SCOPE
from tests.admin_api.transports.oauth2.conftest import (  # noqa: F401 (fixtures)
    OAuthEnv,
    authorization_params,
    code_from,
    kek,
    login,
    new_verifier,
    oauth,
    s256,
)

ADMIN_USER, SUBSCRIBER = "ada", "sam"
PASSWORD = "correct-horse-battery"


@pytest.fixture
def world(oauth: OAuthEnv) -> OAuthEnv:
    oauth.admin_call("POST", "/v1/users", 201, json={"username": ADMIN_USER, "password": PASSWORD,
                                                     "roles": ["admin", "reader"]})
    oauth.admin_call("POST", "/v1/users", 201, json={"username": SUBSCRIBER, "password": PASSWORD,
                                                     "roles": ["subscriber"]})
    return oauth


def _token(env: OAuthEnv, client, username: str, scope: str) -> dict[str, Any]:
    response = env.token({"grant_type": "password", "username": username, "password": PASSWORD, "scope": scope},
                         client)
    assert response.status_code == 200, response.text
    return response.json()


def _admin_api(env: OAuthEnv, token: str, method: str = "GET", path: str = "/v1/users", **kwargs: Any):
    return env.http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)


def _first_party_client(env: OAuthEnv, **settings: Any):
    return env.new_client(first_party=True, **settings)


@pytest.mark.parametrize("token_type", ["JWT", "REFERENCE"])
def test_a_third_party_clients_token_is_refused_by_the_admin_api(world: OAuthEnv, token_type: str) -> None:
    client = world.new_client(token_type=token_type)
    answer = _token(world, client, ADMIN_USER, f"menu:read {ADMIN_SCOPE}")
    assert answer["scope"] == "menu:read"   # the admin scope is not for this client
    refused = _admin_api(world, answer["access_token"])
    assert refused.status_code == 401, refused.text
    assert ADMIN_SCOPE in refused.json()["detail"] and "gateway" in refused.json()["detail"]
    # ... and it still works where it is meant to: the resource servers see it live.
    info = world.introspect(answer["access_token"])
    assert info["active"] is True and info["scope"] == "menu:read"


def test_an_admin_signing_in_for_a_subscribers_client_hands_over_no_admin_token(world: OAuthEnv) -> None:
    attacker_client = world.new_client(pkce_mandatory=True)
    verifier = new_verifier()
    params = authorization_params(attacker_client, code_challenge=s256(verifier), code_challenge_method="S256",
                                  scope=f"menu:read {ADMIN_SCOPE}")
    code = code_from(login(world, params, username=ADMIN_USER, password=PASSWORD))
    answer = world.http.post("/oauth2/token", auth=attacker_client.basic, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": params["redirect_uri"],
        "code_verifier": verifier}).json()
    assert ADMIN_SCOPE not in answer["scope"].split()
    promoted = _admin_api(world, answer["access_token"], "PATCH", "/v1/users/x",
                          json={"roles": ["admin"]}, params={"update_mask": "roles"})
    assert promoted.status_code == 401, promoted.text


def test_a_first_party_clients_token_with_the_admin_scope_acts_on_the_admin_api(world: OAuthEnv) -> None:
    client = _first_party_client(world)
    answer = _token(world, client, ADMIN_USER, ADMIN_SCOPE)
    assert answer["scope"] == ADMIN_SCOPE
    assert _admin_api(world, answer["access_token"]).status_code == 200
    # Refreshing keeps the audience.
    refreshed = world.token({"grant_type": "refresh_token", "refresh_token": answer["refresh_token"]}, client)
    assert _admin_api(world, refreshed.json()["access_token"]).status_code == 200


def test_a_first_party_token_without_the_admin_scope_is_refused_by_the_admin_api(world: OAuthEnv) -> None:
    client = _first_party_client(world)
    answer = _token(world, client, ADMIN_USER, "menu:read")
    assert _admin_api(world, answer["access_token"]).status_code == 401


def test_unmarking_a_first_party_client_takes_its_tokens_off_the_admin_api(world: OAuthEnv) -> None:
    client = _first_party_client(world)
    token = _token(world, client, ADMIN_USER, ADMIN_SCOPE)["access_token"]
    key = world.admin_call("GET", f"/v1/application-keys/{client.key_id}", 200)
    settings = {**key["settings"], "first_party": False}
    world.admin_call("PATCH", f"/v1/application-keys/{client.key_id}", 200,
                     json={"settings": settings}, params={"update_mask": "settings"})
    refused = _admin_api(world, token)
    assert refused.status_code == 401 and "first-party" in refused.json()["detail"]


def test_only_admins_make_a_client_first_party(world: OAuthEnv) -> None:
    portal = _first_party_client(world)
    sam = _token(world, portal, SUBSCRIBER, ADMIN_SCOPE)["access_token"]
    application = _admin_api(world, sam, "POST", "/v1/applications", json={"name": "SamApp"})
    assert application.status_code == 201, application.text
    app_id = application.json()["id"]
    settings = {"grant_types": ["authorization_code"], "callback_url": "https://sam.example/cb", "first_party": True}
    made = _admin_api(world, sam, "POST", f"/v1/applications/{app_id}/keys", json={"settings": settings})
    assert made.status_code == 403, made.text
    assert "first_party" in made.json()["detail"]
    # Nor may the subscriber turn an ordinary key of theirs first-party, or change one an admin marked.
    settings["first_party"] = False
    own = _admin_api(world, sam, "POST", f"/v1/applications/{app_id}/keys", json={"settings": settings})
    assert own.status_code == 201, own.text
    key_id = own.json()["key"]["id"]
    upgraded = _admin_api(world, sam, "PATCH", f"/v1/application-keys/{key_id}",
                          json={"settings": {**settings, "first_party": True}}, params={"update_mask": "settings"})
    assert upgraded.status_code == 403, upgraded.text
    world.admin_call("PATCH", f"/v1/application-keys/{key_id}", 200,
                     json={"settings": {**settings, "first_party": True}}, params={"update_mask": "settings"})
    hijacked = _admin_api(world, sam, "PATCH", f"/v1/application-keys/{key_id}",
                          json={"settings": {**settings, "first_party": True,
                                             "callback_url": "https://evil.example/cb"}},
                          params={"update_mask": "settings"})
    assert hijacked.status_code == 403, hijacked.text
    assert _admin_api(world, sam, "DELETE", f"/v1/application-keys/{key_id}").status_code == 403


def test_no_organization_defines_a_portcullis_scope(world: OAuthEnv) -> None:
    response = world.http.post("/v1/scopes", headers=world.admin, json={"name": ADMIN_SCOPE, "roles": []})
    assert response.status_code == 400, response.text
    assert "reserved" in response.json()["detail"] or "Portcullis" in response.json()["detail"]
