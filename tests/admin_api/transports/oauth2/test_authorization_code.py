"""The authorization endpoint and the authorization_code grant with PKCE (RFC 7636)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.admin_api.transports.oauth2.conftest import (
    CALLBACK,
    OWNER,
    OAuthEnv,
    authorization_params,
    code_from,
    login,
    new_verifier,
    redirect_error,
    s256,
)


def exchange(env: OAuthEnv, client, code: str, verifier: str | None = None, redirect_uri: str = CALLBACK,
             public: bool = False):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if verifier is not None:
        data["code_verifier"] = verifier
    if public:
        data["client_id"] = client.consumer_key
        return env.http.post("/oauth2/token", data=data)
    return env.http.post("/oauth2/token", data=data, auth=client.basic)


def test_login_page_then_code_then_token_s256(oauth: OAuthEnv) -> None:
    client = oauth.new_client(pkce_mandatory=True)
    verifier = new_verifier()
    params = authorization_params(client, code_challenge=s256(verifier), code_challenge_method="S256",
                                  scope="menu:read menu:write")
    page = oauth.http.get("/oauth2/authorize", params=params)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    assert 'name="password"' in page.text and client.consumer_key in page.text

    code = code_from(login(oauth, params))
    response = exchange(oauth, client, code, verifier)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "menu:read menu:write"
    assert "refresh_token" in body
    info = oauth.introspect(body["access_token"])
    assert info["username"] == OWNER
    # A code is used once.
    assert exchange(oauth, client, code, verifier).json()["error"] == "invalid_grant"


def test_wrong_verifier_refused(oauth: OAuthEnv) -> None:
    client = oauth.new_client(pkce_mandatory=True)
    params = authorization_params(client, code_challenge=s256(new_verifier()), code_challenge_method="S256")
    code = code_from(login(oauth, params))
    response = exchange(oauth, client, code, new_verifier())
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_missing_verifier_refused(oauth: OAuthEnv) -> None:
    client = oauth.new_client(pkce_mandatory=True)
    verifier = new_verifier()
    params = authorization_params(client, code_challenge=s256(verifier), code_challenge_method="S256")
    code = code_from(login(oauth, params))
    response = exchange(oauth, client, code)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_plain_allowed_when_the_client_allows_it(oauth: OAuthEnv) -> None:
    client = oauth.new_client(pkce_mandatory=True, pkce_plain_allowed=True)
    verifier = new_verifier()
    params = authorization_params(client, code_challenge=verifier, code_challenge_method="plain")
    code = code_from(login(oauth, params))
    assert exchange(oauth, client, code, verifier).status_code == 200


@pytest.mark.parametrize("method", ["plain", None], ids=["explicit-plain", "method-omitted-means-plain"])
def test_plain_refused_when_not_allowed(oauth: OAuthEnv, method: str | None) -> None:
    client = oauth.new_client(pkce_mandatory=True)
    verifier = new_verifier()
    params = authorization_params(client, code_challenge=verifier, code_challenge_method=method)
    error = redirect_error(oauth.http.get("/oauth2/authorize", params=params))
    assert error["error"] == ["invalid_request"] and error["state"] == ["st-123"]


def test_pkce_required_when_mandatory(oauth: OAuthEnv) -> None:
    client = oauth.new_client(pkce_mandatory=True)
    error = redirect_error(oauth.http.get("/oauth2/authorize", params=authorization_params(client)))
    assert error["error"] == ["invalid_request"]


def test_pkce_optional_when_not_mandatory(oauth: OAuthEnv) -> None:
    client = oauth.new_client()
    code = code_from(login(oauth, authorization_params(client)))
    assert exchange(oauth, client, code).status_code == 200


def test_public_client_without_secret(oauth: OAuthEnv) -> None:
    client = oauth.new_client(grant_types=["authorization_code", "refresh_token"], public_client=True,
                              pkce_mandatory=True)
    assert client.consumer_secret == ""
    verifier = new_verifier()
    params = authorization_params(client, code_challenge=s256(verifier), code_challenge_method="S256")
    code = code_from(login(oauth, params))
    response = exchange(oauth, client, code, verifier, public=True)
    assert response.status_code == 200, response.text
    refreshed = oauth.http.post("/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": response.json()["refresh_token"],
        "client_id": client.consumer_key})
    assert refreshed.status_code == 200, refreshed.text


def test_confidential_client_must_authenticate_at_the_token_endpoint(oauth: OAuthEnv) -> None:
    client = oauth.new_client(pkce_mandatory=True)
    verifier = new_verifier()
    params = authorization_params(client, code_challenge=s256(verifier), code_challenge_method="S256")
    code = code_from(login(oauth, params))
    response = exchange(oauth, client, code, verifier, public=True)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_redirect_uri_must_match_exactly(oauth: OAuthEnv) -> None:
    client = oauth.new_client()
    for uri in (CALLBACK + "/extra", CALLBACK + "?x=1", CALLBACK.upper(), "https://evil.example.com/callback"):
        page = oauth.http.get("/oauth2/authorize", params=authorization_params(client, redirect_uri=uri))
        # Never redirected to an unregistered URI: a 400 page instead.
        assert page.status_code == 400, uri
        assert "location" not in page.headers
        assert page.headers["content-type"].startswith("text/html")


LOOPBACK_CALLBACK = "http://127.0.0.1:8400/callback"


def test_loopback_callback_takes_any_port(oauth: OAuthEnv) -> None:
    # RFC 8252 §7.3: a native app (portcullis login) listens on whatever port is free.
    client = oauth.new_client(callback_url=LOOPBACK_CALLBACK, public_client=True, pkce_mandatory=True,
                              grant_types=["authorization_code", "refresh_token"])
    verifier = new_verifier()
    redirect = "http://127.0.0.1:51234/callback"
    params = authorization_params(client, redirect_uri=redirect, code_challenge=s256(verifier),
                                  code_challenge_method="S256")
    response = login(oauth, params)
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == redirect
    code = parse_qs(location.query)["code"][0]
    token = exchange(oauth, client, code, verifier, redirect_uri=redirect, public=True)
    assert token.status_code == 200, token.text


@pytest.mark.parametrize("uri", [
    "http://127.0.0.1:51234/other",          # another path
    "http://localhost:51234/callback",       # a host name, not a loopback IP
    "http://user@127.0.0.1:51234/callback",  # userinfo
    "https://127.0.0.1:51234/callback",      # another scheme
    "http://127.0.0.1:51234/callback?x=1",   # a query
])
def test_loopback_callback_differs_only_in_the_port(oauth: OAuthEnv, uri: str) -> None:
    client = oauth.new_client(callback_url=LOOPBACK_CALLBACK)
    page = oauth.http.get("/oauth2/authorize", params=authorization_params(client, redirect_uri=uri))
    assert page.status_code == 400 and "location" not in page.headers


def test_redirect_uri_at_exchange_must_match(oauth: OAuthEnv) -> None:
    client = oauth.new_client()
    code = code_from(login(oauth, authorization_params(client)))
    response = exchange(oauth, client, code, redirect_uri=CALLBACK + "/other")
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_unknown_client_is_a_400_page(oauth: OAuthEnv) -> None:
    page = oauth.http.get("/oauth2/authorize", params={"response_type": "code", "client_id": "pcc_nope",
                                                       "redirect_uri": CALLBACK})
    assert page.status_code == 400 and "location" not in page.headers


def test_unsupported_response_type_goes_back_to_the_client(oauth: OAuthEnv) -> None:
    client = oauth.new_client()
    error = redirect_error(oauth.http.get("/oauth2/authorize",
                                          params=authorization_params(client, response_type="token")))
    assert error["error"] == ["unsupported_response_type"] and error["state"] == ["st-123"]


def test_client_without_the_code_grant(oauth: OAuthEnv) -> None:
    client = oauth.new_client(grant_types=["authorization_code"])
    other = oauth.new_client(grant_types=["client_credentials"], environment="SANDBOX")
    assert oauth.http.get("/oauth2/authorize", params=authorization_params(client)).status_code == 200
    # No callback registered: nowhere to send the error.
    page = oauth.http.get("/oauth2/authorize", params=authorization_params(other))
    assert page.status_code == 400


def test_wrong_password_shows_the_form_again(oauth: OAuthEnv) -> None:
    client = oauth.new_client()
    response = login(oauth, authorization_params(client), password="wrong")
    assert response.status_code == 401
    assert "Invalid username or password" in response.text and "location" not in response.headers


def test_login_page_escapes_reflected_values(oauth: OAuthEnv) -> None:
    client = oauth.new_client()
    page = oauth.http.get("/oauth2/authorize",
                          params=authorization_params(client, scope="<script>alert(1)</script>",
                                                      state='"><img src=x>'))
    assert page.status_code == 200
    assert "<script>" not in page.text and "<img" not in page.text


def test_code_expires(oauth: OAuthEnv) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from admin_api.db.oauth_models import AuthorizationCode
    from admin_api.db.types import utcnow

    client = oauth.new_client()
    code = code_from(login(oauth, authorization_params(client)))
    with oauth.store.write() as writer:
        writer.session.execute(update(AuthorizationCode).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert exchange(oauth, client, code).json()["error"] == "invalid_grant"
