"""The resident key manager's grants as a client application uses them, over HTTP:
authorization_code with PKCE (S256, and plain where allowed) through the login form,
refresh tokens, and the tokens working through Envoy."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import LiveMesh
from tests.integration.gateway import assert_allowed, eventually
from tests.integration.oauth import (
    CALLBACK_URL,
    AppKey,
    authorize,
    call,
    exchange_code,
    generate_key,
    oauth_api,
    oauth_http,
    pkce_pair,
    subscribed_app,
    token_response,
)
from tests.integration.scenario import PublishedApi, unique

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def api(live: LiveMesh) -> PublishedApi:
    return oauth_api(live)


@pytest.fixture(scope="module")
def user(live: LiveMesh) -> dict[str, Any]:
    return live.admin.create_user(unique("shopper"), PASSWORD, ["customer"])


def code_key(live: LiveMesh, api: PublishedApi, *, plain_allowed: bool = False) -> AppKey:
    settings = {"grant_types": ["authorization_code", "refresh_token"], "callback_url": CALLBACK_URL,
                "pkce_mandatory": True, "pkce_plain_allowed": plain_allowed}
    return generate_key(live, subscribed_app(live, api), settings=settings)


@pytest.mark.parametrize("method", ["S256", "plain"])
def test_authorization_code_with_pkce(live: LiveMesh, api: PublishedApi, user: dict[str, Any], method: str) -> None:
    key = code_key(live, api, plain_allowed=method == "plain")
    verifier, challenge = pkce_pair(method)
    code = authorize(live, key, username=user["username"], password=PASSWORD, challenge=challenge, method=method)
    response = exchange_code(live, key, code, verifier)
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert_allowed(eventually(lambda: call(api, tokens["access_token"]), 200))
    # A code is good once.
    again = exchange_code(live, key, code, verifier)
    assert again.status_code == 400, again.text
    assert again.json()["error"] == "invalid_grant"


def test_a_wrong_code_verifier_gets_no_token(live: LiveMesh, api: PublishedApi, user: dict[str, Any]) -> None:
    key = code_key(live, api)
    _verifier, challenge = pkce_pair("S256")
    code = authorize(live, key, username=user["username"], password=PASSWORD, challenge=challenge, method="S256")
    other_verifier, _ = pkce_pair("S256")
    response = exchange_code(live, key, code, other_verifier)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"


def test_plain_pkce_is_refused_where_the_application_does_not_allow_it(live: LiveMesh, api: PublishedApi) -> None:
    key = code_key(live, api, plain_allowed=False)
    _verifier, challenge = pkce_pair("plain")
    params = {"response_type": "code", "client_id": key.consumer_key, "redirect_uri": CALLBACK_URL,
              "code_challenge": challenge, "code_challenge_method": "plain", "state": "s"}
    with oauth_http(live) as browser:
        response = browser.get("/oauth2/authorize", params=params)
    # RFC 6749 4.1.2.1: an error redirect to the (valid) callback, or an error page.
    if response.status_code in (302, 303):
        assert "error=invalid_request" in response.headers["location"], response.headers["location"]
        assert "code=" not in response.headers["location"]
    else:
        assert response.status_code == 400, response.text


def test_a_refresh_token_gets_a_new_working_access_token(live: LiveMesh, api: PublishedApi, user: dict[str, Any]) -> None:
    key = code_key(live, api)
    verifier, challenge = pkce_pair("S256")
    code = authorize(live, key, username=user["username"], password=PASSWORD, challenge=challenge, method="S256")
    first = exchange_code(live, key, code, verifier).json()
    assert first.get("refresh_token"), f"no refresh token: {first}"
    refreshed = token_response(live, key.consumer_key, key.consumer_secret, grant_type="refresh_token",
                               refresh_token=first["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()
    assert second["access_token"] != first["access_token"]
    assert_allowed(eventually(lambda: call(api, second["access_token"]), 200))


def test_a_refresh_token_of_another_client_gets_no_token(live: LiveMesh, api: PublishedApi, user: dict[str, Any]) -> None:
    key, other = code_key(live, api), code_key(live, api)
    verifier, challenge = pkce_pair("S256")
    code = authorize(live, key, username=user["username"], password=PASSWORD, challenge=challenge, method="S256")
    refresh = exchange_code(live, key, code, verifier).json()["refresh_token"]
    stolen = token_response(live, other.consumer_key, other.consumer_secret, grant_type="refresh_token", refresh_token=refresh)
    assert stolen.status_code == 400, stolen.text
    assert stolen.json()["error"] == "invalid_grant"


def test_a_wrong_password_gets_no_code(live: LiveMesh, api: PublishedApi, user: dict[str, Any]) -> None:
    key = code_key(live, api)
    _verifier, challenge = pkce_pair("S256")
    with pytest.raises(AssertionError):
        authorize(live, key, username=user["username"], password="wrong password", challenge=challenge, method="S256")
