"""Who may introspect a resident token (RFC 7662 §4: the server decides): the token's own
client, the resident resource servers (authz_server's sync token) and admins of the
token's organization. Any other client of the organization learns nothing, not even
that the token is live."""

from __future__ import annotations

import pytest

from tests.admin_api.transports.oauth2.conftest import OWNER, OWNER_PASSWORD, OAuthEnv, kek, oauth  # noqa: F401


def _access_token(env: OAuthEnv, client, token_type: str = "JWT") -> str:
    response = env.token({"grant_type": "password", "username": OWNER, "password": OWNER_PASSWORD,
                          "scope": "menu:read"}, client)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


@pytest.mark.parametrize("token_type", ["JWT", "REFERENCE"])
def test_another_client_of_the_organization_cannot_introspect_a_token(oauth: OAuthEnv, token_type: str) -> None:
    victim = oauth.new_client(token_type=token_type)
    snooper = oauth.new_client(environment="SANDBOX")
    token = _access_token(oauth, victim)
    answer = oauth.introspect(token, headers={}, auth=snooper.basic)
    assert answer == {"active": False}


def test_the_tokens_own_client_introspects_it(oauth: OAuthEnv) -> None:
    client = oauth.new_client()
    token = _access_token(oauth, client)
    answer = oauth.introspect(token, headers={}, auth=client.basic)
    assert answer["active"] is True and answer["username"] == OWNER


def test_the_resource_servers_sync_token_introspects_any_access_token(oauth: OAuthEnv) -> None:
    token = _access_token(oauth, oauth.new_client())
    assert oauth.introspect(token)["active"] is True


def test_an_admin_introspects_tokens_of_its_organization(oauth: OAuthEnv) -> None:
    token = _access_token(oauth, oauth.new_client())
    answer = oauth.introspect(token, headers=oauth.admin)
    assert answer["active"] is True and answer["client_id"]


def test_a_user_token_without_the_admin_role_is_no_introspection_credential(oauth: OAuthEnv) -> None:
    client = oauth.new_client()
    token = _access_token(oauth, client)
    response = oauth.http.post("/oauth2/introspect", data={"token": token},
                               headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
