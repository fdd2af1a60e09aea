"""Consent before a code: a third-party client (an application key that is not
first-party) gets an authorization code only after the signed-in user allowed it on a
page naming the application, its owner and the scopes. A first-party client skips it."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.admin_api.transports.oauth2.conftest import (  # noqa: F401 (fixtures)
    OWNER,
    OWNER_PASSWORD,
    OAuthEnv,
    authorization_params,
    code_from,
    consent,
    csrf_token,
    kek,
    oauth,
)


def _sign_in(env: OAuthEnv, params: dict[str, str]):
    page = env.http.get("/oauth2/authorize", params=params)
    return env.http.post("/oauth2/authorize", params=params, data={
        "username": OWNER, "password": OWNER_PASSWORD, "csrf_token": csrf_token(page)})


def test_a_third_party_client_gets_no_code_before_the_user_consents(oauth: OAuthEnv) -> None:
    client = oauth.new_client()
    params = authorization_params(client, scope="menu:read menu:write")
    page = _sign_in(oauth, params)
    assert page.status_code == 200 and "location" not in page.headers
    assert "PizzaApp" in page.text and OWNER in page.text and client.consumer_key in page.text
    assert "menu:read" in page.text and "menu:write" in page.text
    assert code_from(consent(oauth, params, page))


def test_denying_consent_sends_access_denied_to_the_client(oauth: OAuthEnv) -> None:
    params = authorization_params(oauth.new_client())
    answer = consent(oauth, params, _sign_in(oauth, params), answer="deny")
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["error"] == ["access_denied"] and "code" not in query and query["state"] == ["st-123"]


def test_a_forged_consent_ticket_issues_no_code(oauth: OAuthEnv) -> None:
    params = authorization_params(oauth.new_client())
    page = _sign_in(oauth, params)
    forged = oauth.http.post("/oauth2/authorize", params=params, data={
        "consent": "allow", "consent_ticket": "eyJzdWIiOiJ4In0.00", "csrf_token": csrf_token(page)})
    assert forged.status_code == 403 and "location" not in forged.headers


def test_a_consent_ticket_is_for_one_authorization_request(oauth: OAuthEnv) -> None:
    params = authorization_params(oauth.new_client())
    page = _sign_in(oauth, params)
    other = {**params, "scope": "menu:read menu:write"}
    assert consent(oauth, other, page).status_code == 403


def test_a_first_party_client_skips_the_consent_page(oauth: OAuthEnv) -> None:
    params = authorization_params(oauth.new_client(first_party=True))
    assert code_from(_sign_in(oauth, params))
