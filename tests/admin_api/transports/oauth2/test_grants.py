"""The token endpoint: every grant, client authentication, grant-type restriction,
scope entitlement, refresh rotation and RFC 6749 §5.2 error answers."""

from __future__ import annotations

import pytest

from tests.admin_api.transports.oauth2.conftest import (
    OTHER_PASSWORD,
    OTHER_USER,
    OWNER,
    OWNER_PASSWORD,
    OAuthEnv,
)


def assert_oauth_error(response, status: int, error: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == error
    return body


def test_client_credentials_basic(oauth: OAuthEnv) -> None:
    client = oauth.new_client()
    response = oauth.token({"grant_type": "client_credentials", "scope": "menu:read"}, client)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "menu:read"
    assert "refresh_token" not in body  # RFC 6749 §4.4.3


def test_client_credentials_post(oauth: OAuthEnv) -> None:
    client = oauth.new_client()
    response = oauth.http.post("/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": client.consumer_key,
        "client_secret": client.consumer_secret})
    assert response.status_code == 200, response.text


def test_client_credentials_scopes_are_the_owners(oauth: OAuthEnv) -> None:
    # alice (the owner) is reader and writer; "admin" needs administrator; "open" has no role;
    # "unknown" is not defined.
    client = oauth.new_client()
    response = oauth.token({"grant_type": "client_credentials",
                            "scope": "menu:read admin menu:write open unknown"}, client)
    assert response.json()["scope"] == "menu:read menu:write open"


def test_owner_without_user_gets_only_roleless_scopes(oauth: OAuthEnv) -> None:
    app = oauth.admin_call("POST", "/v1/applications", 201, json={"name": "Orphan", "owner": "nobody"})
    client = oauth.new_client(application_id=app["id"])
    response = oauth.token({"grant_type": "client_credentials", "scope": "menu:read open"}, client)
    assert response.json()["scope"] == "open"


def test_password_grant_scopes_are_the_users(oauth: OAuthEnv) -> None:
    client = oauth.new_client()
    response = oauth.token({"grant_type": "password", "username": OTHER_USER, "password": OTHER_PASSWORD,
                            "scope": "menu:read menu:write"}, client)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "menu:read"  # bob is only a reader
    assert body["refresh_token"].startswith("pcr_")
    info = oauth.introspect(body["access_token"])
    assert info["username"] == OTHER_USER and info["sub"] != OTHER_USER


@pytest.mark.parametrize("username,password", [(OWNER, "wrong"), ("nobody", "whatever")],
                         ids=["wrong-password", "unknown-user"])
def test_password_grant_bad_credentials(oauth: OAuthEnv, username: str, password: str) -> None:
    client = oauth.new_client()
    response = oauth.token({"grant_type": "password", "username": username, "password": password}, client)
    assert_oauth_error(response, 400, "invalid_grant")


def test_refresh_token_rotates(oauth: OAuthEnv) -> None:
    client = oauth.new_client(refresh_token_validity_seconds=7200)
    first = oauth.token({"grant_type": "password", "username": OWNER, "password": OWNER_PASSWORD,
                         "scope": "menu:read menu:write"}, client).json()
    second = oauth.token({"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}, client)
    assert second.status_code == 200, second.text
    second_body = second.json()
    assert second_body["refresh_token"] != first["refresh_token"]
    assert second_body["scope"] == "menu:read menu:write"
    # The new one works once (reusing the old one revokes the grant: test_refresh_reuse_and_pruning.py).
    third = oauth.token({"grant_type": "refresh_token", "refresh_token": second_body["refresh_token"],
                         "scope": "menu:read"}, client)
    assert third.status_code == 200 and third.json()["scope"] == "menu:read"
    # Its own validity: introspected by its client.
    info = oauth.introspect(third.json()["refresh_token"], headers={}, auth=client.basic)
    assert info["active"] is True and info["token_type"] == "refresh_token"
    assert info["exp"] - info["iat"] == 7200


def test_refresh_cannot_widen_scope(oauth: OAuthEnv) -> None:
    client = oauth.new_client()
    first = oauth.token({"grant_type": "password", "username": OWNER, "password": OWNER_PASSWORD,
                         "scope": "menu:read"}, client).json()
    wider = oauth.token({"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
                         "scope": "menu:read menu:write"}, client)
    assert_oauth_error(wider, 400, "invalid_scope")


def test_refresh_token_of_another_client_refused(oauth: OAuthEnv) -> None:
    mine, other = oauth.new_client(), oauth.new_client(environment="SANDBOX")
    first = oauth.token({"grant_type": "password", "username": OWNER, "password": OWNER_PASSWORD}, mine).json()
    stolen = oauth.token({"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}, other)
    assert_oauth_error(stolen, 400, "invalid_grant")


def test_no_refresh_token_without_the_refresh_grant(oauth: OAuthEnv) -> None:
    client = oauth.new_client(grant_types=["password"])
    body = oauth.token({"grant_type": "password", "username": OWNER, "password": OWNER_PASSWORD}, client).json()
    assert "access_token" in body and "refresh_token" not in body


@pytest.mark.parametrize("grant", ["password", "refresh_token", "authorization_code"])
def test_grant_not_in_settings_is_unauthorized_client(oauth: OAuthEnv, grant: str) -> None:
    client = oauth.new_client(grant_types=["client_credentials"])
    data = {"grant_type": grant, "username": OWNER, "password": OWNER_PASSWORD, "refresh_token": "pcr_x",
            "code": "abc", "redirect_uri": "https://app.example.com/callback"}
    assert_oauth_error(oauth.token(data, client), 400, "unauthorized_client")


def test_client_credentials_not_in_settings(oauth: OAuthEnv) -> None:
    client = oauth.new_client(grant_types=["password"])
    assert_oauth_error(oauth.token({"grant_type": "client_credentials"}, client), 400, "unauthorized_client")


def test_unsupported_grant_type(oauth: OAuthEnv) -> None:
    client = oauth.new_client()
    assert_oauth_error(oauth.token({"grant_type": "implicit"}, client), 400, "unsupported_grant_type")
    assert_oauth_error(oauth.token({}, client), 400, "unsupported_grant_type")


@pytest.mark.parametrize("how", ["basic-wrong-secret", "post-wrong-secret", "unknown-client", "no-credentials"])
def test_invalid_client_is_401_with_challenge(oauth: OAuthEnv, how: str) -> None:
    client = oauth.new_client()
    data = {"grant_type": "client_credentials"}
    auth = None
    if how == "basic-wrong-secret":
        auth = (client.consumer_key, "pcsec_wrong")
    elif how == "post-wrong-secret":
        data.update(client_id=client.consumer_key, client_secret="pcsec_wrong")
    elif how == "unknown-client":
        auth = ("pcc_unknown", client.consumer_secret)
    response = oauth.http.post("/oauth2/token", data=data, auth=auth)
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith('Basic realm="portcullis"')


def test_confidential_client_cannot_skip_its_secret(oauth: OAuthEnv) -> None:
    client = oauth.new_client()
    response = oauth.http.post("/oauth2/token", data={"grant_type": "client_credentials",
                                                      "client_id": client.consumer_key})
    assert_oauth_error(response, 401, "invalid_client")


def test_client_of_an_external_key_manager_is_refused(oauth: OAuthEnv) -> None:
    km = oauth.admin_call("POST", "/v1/key-managers", 201, json={
        "name": "corp-idp", "type": "OIDC", "issuer": "https://idp.example.com",
        "jwks_uri": "https://idp.example.com/jwks", "token_handling": {"accepts_jwt": True}})
    oauth.admin_call("POST", f"/v1/applications/{oauth.application_id}/mapped-keys", 201, json={
        "environment": "PRODUCTION", "key_manager_id": km["id"], "consumer_key": "external-client",
        "settings": {"grant_types": ["client_credentials"]}})
    response = oauth.http.post("/oauth2/token", data={"grant_type": "client_credentials"},
                               auth=("external-client", "anything"))
    assert_oauth_error(response, 401, "invalid_client")


@pytest.mark.parametrize("body,content_type", [
    ("grant_type=client_credentials&grant_type=password", "application/x-www-form-urlencoded"),
    ('{"grant_type": "client_credentials"}', "application/json"),
    ("grant_type=%ff", "application/x-www-form-urlencoded"),
], ids=["repeated-parameter", "json-body", "bad-encoding"])
def test_malformed_requests_are_invalid_request(oauth: OAuthEnv, body: str, content_type: str) -> None:
    client = oauth.new_client()
    response = oauth.http.post("/oauth2/token", content=body, auth=client.basic,
                               headers={"content-type": content_type})
    assert_oauth_error(response, 400, "invalid_request")


def test_token_endpoint_is_post_only(oauth: OAuthEnv) -> None:
    response = oauth.http.get("/oauth2/token")
    assert response.status_code == 405 and response.headers["allow"] == "POST"


def test_oauth_endpoints_ignore_the_admin_credential(oauth: OAuthEnv) -> None:
    # The admin bearer token is not a client credential.
    response = oauth.http.post("/oauth2/token", data={"grant_type": "client_credentials"}, headers=oauth.admin)
    assert_oauth_error(response, 401, "invalid_client")


def test_reference_tokens(oauth: OAuthEnv) -> None:
    client = oauth.new_client(token_type="REFERENCE", access_token_validity_seconds=600)
    body = oauth.token({"grant_type": "client_credentials", "scope": "menu:read"}, client).json()
    token = body["access_token"]
    import re
    assert re.fullmatch(r"pct_[A-Za-z0-9_-]{43}", token)
    assert body["expires_in"] == 600
    info = oauth.introspect(token)
    assert info["active"] is True
    assert info["client_id"] == client.consumer_key and info["scope"] == "menu:read"
    assert info["exp"] - info["iat"] == 600
