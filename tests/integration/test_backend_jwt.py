"""Backend JWT through Envoy: the sample backend verifies the JWT it receives with the
published JWKS and echoes the claims (API key and OAuth2 callers); spoofed headers never
reach it; Authorization only when the API says so; a rotation in the middle of traffic;
a repeated caller gets the cached JWT (same jti)."""

from __future__ import annotations

import os
from typing import Any

import jwt
import pytest

from authz_server.settings import worker_count
from tests.integration.conftest import LiveMesh
from tests.integration.endpoints import http_get
from tests.integration.gateway import assert_allowed, describe, eventually, wait_until
from tests.integration.oauth import bearer, call, generate_key, oauth_api, resident_token, subscribed_app
from tests.integration.scenario import PublishedApi, create_api, ready_key

pytestmark = pytest.mark.integration

HEADER = "x-jwt-assertion"
BACKEND_JWT = {"enabled": True, "static_claims": [{"name": "team", "value": "pizza"}]}


def echo(api: PublishedApi, *, key: str | None = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = api.get("/echo/who", key=key, headers=headers)
    assert response.status_code == 200, describe(response)
    return response.json()


def verified_claims(answer: dict[str, Any]) -> dict[str, Any]:
    result = answer.get("backend_jwt")
    assert result is not None and result["verified"], f"backend JWT not verified by the backend: {result}"
    return result["claims"]


def jwks(live: LiveMesh) -> dict[str, Any]:
    response = http_get(live.settings, f"{live.admin_url}/backend-jwt/jwks.json")  # no credential
    assert response.status_code == 200, describe(response)
    return response.json()


@pytest.fixture(scope="module")
def key_api(live: LiveMesh) -> PublishedApi:
    return create_api(live, backend_jwt=BACKEND_JWT)


@pytest.fixture(scope="module")
def key_caller(key_api: PublishedApi) -> tuple[str, dict[str, Any]]:
    _key, value, app = ready_key(key_api)
    eventually(lambda: key_api.get("/menu", key=value), 200)
    return value, app


def test_an_api_key_caller_is_vouched_for_and_spoofed_headers_never_arrive(key_api, key_caller):
    value, app = key_caller
    answer = echo(key_api, key=value, headers={"X-JWT-Assertion": "forged.jwt.value",
                                               "x-portcullis-environment": "sandbox",
                                               "authorization": "Basic dXNlcjpwYXNz"})
    assert answer["environment"] == "production"
    headers = answer["headers"]
    assert headers[HEADER] != "forged.jwt.value" and "forged" not in headers[HEADER]
    assert "apikey" not in headers and "authorization" not in headers
    assert headers.get("x-portcullis-environment", "production") == "production"
    claims = verified_claims(answer)
    assert claims["iss"] == "portcullis" and claims["credential"] == "api_key"
    assert claims["application"]["id"] == app["id"] and claims["sub"] == app["owner"] == claims["subscriber"]
    assert claims["api"] == {"id": key_api.id, "name": key_api.api["name"], "version": "1.0.0",
                             "context": key_api.api["context"]}
    assert (claims["key_type"], claims["team"], claims["scopes"]) == ("PRODUCTION", "pizza", [])


def test_a_sandbox_key_reaches_the_sandbox_backend_with_its_key_type(key_api):
    _key, value, _app = ready_key(key_api, environment="SANDBOX")
    response = eventually(lambda: key_api.get("/echo/who", key=value), 200)
    assert_allowed(response, "sandbox")
    assert verified_claims(response.json())["key_type"] == "SANDBOX"


def test_an_oauth2_caller_is_vouched_for_with_its_consumer_key_and_mapped_claims(live):
    api = oauth_api(live, backend_jwt={**BACKEND_JWT, "claim_mappings": [{"from_claim": "azp",
                                                                          "to_claim": "client_app"}]})
    app = subscribed_app(live, api)
    key = generate_key(live, app)
    token = resident_token(live, key)
    response = eventually(lambda: call(api, token, "/echo/who"), 200)
    answer = response.json()
    assert "authorization" not in answer["headers"]  # the token Portcullis consumed stays here
    claims = verified_claims(answer)
    assert (claims["credential"], claims["consumer_key"], claims["client_app"]) == (
        "oauth2", key.consumer_key, key.consumer_key)
    # client_credentials: the token stands for its client, so the end user is the owner.
    assert claims["sub"] == app["owner"] and claims["application"]["id"] == app["id"]


def test_authorization_is_passed_only_when_the_api_says_so(live, key_api, key_caller):
    value, _app = key_caller
    api = create_api(live, pass_authorization_header=True)
    _key, other_value, _ = ready_key(api)
    answer = eventually(lambda: api.get("/echo/x", key=other_value, headers={"authorization": "Basic abc"}), 200)
    assert answer.json()["headers"]["authorization"] == "Basic abc"
    assert "authorization" not in echo(key_api, key=value, headers={"authorization": "Basic abc"})["headers"]


def test_an_api_without_backend_jwt_drops_a_client_sent_assertion(live):
    api = create_api(live)
    _key, value, _app = ready_key(api)
    response = eventually(lambda: api.get("/echo/x", key=value, headers={"X-JWT-Assertion": "forged"}), 200)
    assert HEADER not in response.json()["headers"] and "backend_jwt" not in response.json()


def test_a_repeated_caller_gets_the_cached_jwt(key_api, key_caller):
    value, _app = key_caller
    # Envoy spreads calls over the authz workers, each with its own cache: one call more
    # than there are workers lands twice on one of them.
    workers = worker_count({k: v for k, v in os.environ.items() if k.startswith("PORTCULLIS_AUTHZ_WORKERS")})
    jtis = [verified_claims(echo(key_api, key=value))["jti"] for _ in range(workers + 1)]
    assert len(set(jtis)) < len(jtis)


def test_rotation_in_the_middle_of_traffic(live, key_api, key_caller):
    value, _app = key_caller
    before = echo(key_api, key=value)
    old_token = before["headers"][HEADER]
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    rotated = live.admin.call("POST", "/v1/backend-signing-keys/rotate", {"algorithm": "ES256"}, expect=201)
    new_kid = rotated["kid"]
    assert new_kid != old_kid

    def verified_with_new_key() -> bool:
        # Until then: the old key (still valid), or the new one before the backend's
        # rate-limited JWKS refetch (at most one per second) has seen it.
        answer = echo(key_api, key=value)
        result = answer["backend_jwt"]
        kid = jwt.get_unverified_header(answer["headers"][HEADER])["kid"]
        assert kid in (old_kid, new_kid) and (result["verified"] or result["error"] == "unknown kid"), result
        return kid == new_kid and result["verified"]

    wait_until(verified_with_new_key, "authz_server signs with the new key and the backend verifies it")
    published = {key["kid"]: key for key in jwks(live)["keys"]}
    assert {old_kid, new_kid} <= set(published)
    # The overlap: a JWT signed with the previous key still verifies with the JWKS.
    old_claims = jwt.decode(old_token, jwt.PyJWK(published[old_kid]).key, algorithms=["ES256"])
    assert old_claims["jti"] == verified_claims(before)["jti"]
    listed = live.admin.call("GET", "/v1/backend-signing-keys")["keys"]
    states = {key["kid"]: key["state"] for key in listed}
    assert (states[new_kid], states[old_kid]) == ("ACTIVE", "RETIRED")
