"""Login CSRF at /oauth2/authorize: a cross-site page that posts the sign-in form with a
victim's browser neither signs anyone in nor gets a code. The form carries a token that
must match its cookie, and the browser's Origin / Sec-Fetch-Site must say the post came
from the page itself."""

from __future__ import annotations

import pytest

from tests.admin_api.transports.oauth2.conftest import (  # noqa: F401 (fixtures)
    ISSUER,
    OWNER,
    OWNER_PASSWORD,
    OAuthEnv,
    authorization_params,
    code_from,
    csrf_token,
    kek,
    login,
    oauth,
)

CREDENTIALS = {"username": OWNER, "password": OWNER_PASSWORD}


def _post(env: OAuthEnv, params: dict[str, str], data: dict[str, str], headers: dict[str, str] | None = None):
    return env.http.post("/oauth2/authorize", params=params, data=data, headers=headers or {})


def test_a_sign_in_post_without_the_forms_token_issues_no_code(oauth: OAuthEnv) -> None:
    params = authorization_params(oauth.new_client())
    response = _post(oauth, params, CREDENTIALS)
    assert response.status_code == 403, response.text
    assert "location" not in response.headers


def test_a_forged_token_issues_no_code(oauth: OAuthEnv) -> None:
    params = authorization_params(oauth.new_client())
    oauth.http.get("/oauth2/authorize", params=params)   # the victim's cookie exists
    response = _post(oauth, params, {**CREDENTIALS, "csrf_token": "guessed-by-the-attacker"})
    assert response.status_code == 403 and "location" not in response.headers


def test_the_token_without_its_cookie_issues_no_code(oauth: OAuthEnv) -> None:
    params = authorization_params(oauth.new_client())
    token = csrf_token(oauth.http.get("/oauth2/authorize", params=params))   # the attacker's own page
    oauth.http.cookies.clear()                                                # the victim's browser
    response = _post(oauth, params, {**CREDENTIALS, "csrf_token": token})
    assert response.status_code == 403 and "location" not in response.headers


@pytest.mark.parametrize("headers", [
    pytest.param({"Sec-Fetch-Site": "cross-site"}, id="sec-fetch-site-cross-site"),
    pytest.param({"Sec-Fetch-Site": "same-site"}, id="sec-fetch-site-same-site"),
    pytest.param({"Origin": "https://evil.example"}, id="origin-elsewhere"),
    pytest.param({"Origin": "null"}, id="origin-null"),
])
def test_a_cross_site_post_issues_no_code_even_with_the_token(oauth: OAuthEnv, headers: dict[str, str]) -> None:
    params = authorization_params(oauth.new_client())
    token = csrf_token(oauth.http.get("/oauth2/authorize", params=params))
    response = _post(oauth, params, {**CREDENTIALS, "csrf_token": token}, headers)
    assert response.status_code == 403, response.text
    assert "location" not in response.headers


def test_the_pages_own_post_signs_in(oauth: OAuthEnv) -> None:
    params = authorization_params(oauth.new_client(first_party=True))   # no consent step
    page = oauth.http.get("/oauth2/authorize", params=params)
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    response = _post(oauth, params, {**CREDENTIALS, "csrf_token": csrf_token(page)},
                     {"Origin": ISSUER, "Sec-Fetch-Site": "same-origin"})
    assert code_from(response)
