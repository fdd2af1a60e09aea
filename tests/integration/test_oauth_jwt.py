"""JWT validation through Envoy: fake IdP tokens minted with its keys (and broken on
purpose), and resident tokens across a signing-key rotation and an RFC 7009 revoke."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from tests.integration.conftest import JWKS_MIN_REFRESH_SECONDS, LiveMesh
from tests.integration.endpoints import http_get
from tests.fake_idp import FakeIdp, SigningKey, tamper, unsigned
from tests.integration.gateway import PROPAGATION_SECONDS, assert_allowed, eventually
from tests.integration.oauth import (
    assert_token_denied,
    call,
    generate_key,
    mapped_client,
    oauth_api,
    public_url,
    resident_token,
    revoke,
    subscribed_app,
)
from tests.integration.scenario import PublishedApi

pytestmark = pytest.mark.integration

# Beyond any allowed leeway (at most 300 s).
FAR = 3600


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def api(live: LiveMesh, external_km: dict[str, Any]) -> PublishedApi:
    return oauth_api(live)


@pytest.fixture(scope="module")
def client_id(live: LiveMesh, fake_idp: FakeIdp, external_km: dict[str, Any], api: PublishedApi) -> str:
    """A fake IdP client mapped to an application subscribed to the API; its valid
    token is accepted (checked once, so that each denial below is the token's fault)."""
    app = subscribed_app(live, api)
    client = mapped_client(live, fake_idp, external_km, app)
    eventually(lambda: call(api, fake_idp.access_token(client)), 200)
    return client


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_a_valid_token_of_each_published_algorithm_is_accepted(api: PublishedApi, fake_idp: FakeIdp, client_id: str, alg: str) -> None:
    assert_allowed(call(api, fake_idp.access_token(client_id, alg=alg)))  # type: ignore[arg-type]


def test_at_jwt_typed_tokens_are_accepted(api: PublishedApi, fake_idp: FakeIdp, client_id: str) -> None:
    assert_allowed(call(api, fake_idp.mint(fake_idp.claims(client_id), typ="at+jwt")))


def test_a_wrong_signature_is_refused(api: PublishedApi, fake_idp: FakeIdp, client_id: str) -> None:
    assert_token_denied(call(api, tamper(fake_idp.access_token(client_id))), 401, "token_signature_invalid")


def test_a_token_signed_by_another_key_under_a_published_kid_is_refused(api: PublishedApi, fake_idp: FakeIdp, client_id: str) -> None:
    impostor = SigningKey.generate("RS256")
    token = fake_idp.mint(fake_idp.claims(client_id), key=impostor, kid=fake_idp.key("RS256").kid)
    assert_token_denied(call(api, token), 401, "token_signature_invalid")


def test_an_expired_token_is_refused(api: PublishedApi, fake_idp: FakeIdp, client_id: str) -> None:
    claims = fake_idp.claims(client_id, now=int(time.time()) - 2 * FAR, lifetime=FAR)
    assert_token_denied(call(api, fake_idp.mint(claims)), 401, "token_expired")


def test_a_token_not_yet_valid_is_refused(api: PublishedApi, fake_idp: FakeIdp, client_id: str) -> None:
    claims = fake_idp.claims(client_id, now=int(time.time()) + FAR)
    assert_token_denied(call(api, fake_idp.mint(claims)), 401, "token_not_yet_valid")


def test_a_token_within_the_leeway_is_accepted(api: PublishedApi, fake_idp: FakeIdp, client_id: str) -> None:
    # Expired five seconds ago: inside the default 30 s leeway.
    claims = fake_idp.claims(client_id, now=int(time.time()) - 60, lifetime=55)
    assert_allowed(call(api, fake_idp.mint(claims)))


def test_an_unknown_kid_is_refused(api: PublishedApi, fake_idp: FakeIdp, client_id: str) -> None:
    stray = SigningKey.generate("ES256", kid="never-published")
    assert_token_denied(call(api, fake_idp.mint(fake_idp.claims(client_id), key=stray)), 401, "token_key_unknown")


def test_a_key_added_at_the_provider_is_found_by_refreshing_the_jwks(api: PublishedApi, fake_idp: FakeIdp, client_id: str) -> None:
    added = fake_idp.add_key("ES256")
    try:
        token = fake_idp.mint(fake_idp.claims(client_id), key=added)
        # The refresh on an unknown kid is rate limited: a previous test may just have used it.
        assert_allowed(eventually(lambda: call(api, token), 200, timeout=JWKS_MIN_REFRESH_SECONDS + PROPAGATION_SECONDS))
    finally:
        fake_idp.remove_key(added.kid)


def test_a_flood_of_unknown_kids_does_not_hammer_the_provider(api: PublishedApi, fake_idp: FakeIdp, client_id: str) -> None:
    before = fake_idp.jwks_fetches
    started = time.monotonic()
    for number in range(20):
        stray = fake_idp.mint(fake_idp.claims(client_id), kid=f"bogus-{number}")
        assert_token_denied(call(api, stray), 401, "token_key_unknown")
    elapsed = time.monotonic() - started
    # At most one forced refresh per JWKS_MIN_REFRESH_SECONDS (plus a scheduled one).
    allowed = 2 + int(elapsed / JWKS_MIN_REFRESH_SECONDS)
    assert fake_idp.jwks_fetches - before <= allowed, f"{fake_idp.jwks_fetches - before} JWKS fetches for 20 bogus kids"


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda idp, claims: idp.mint(claims, key=idp.key("RS256"), alg="PS256"), id="PS256-not-in-allow-list"),
        pytest.param(lambda idp, claims: idp.mint(claims, hmac_secret=b"k" * 32, alg="HS256"), id="HS256"),
        pytest.param(lambda idp, claims: unsigned(claims), id="none"),
    ],
)
def test_an_algorithm_not_allowed_is_refused(api: PublishedApi, fake_idp: FakeIdp, client_id: str, make: Any) -> None:
    assert_token_denied(call(api, make(fake_idp, fake_idp.claims(client_id))), 401, "token_algorithm_not_allowed")


def test_an_hmac_token_keyed_with_the_public_key_is_refused(api: PublishedApi, fake_idp: FakeIdp, client_id: str) -> None:
    """The classic key-confusion attack: HS256 with the published RSA key as the secret."""
    public_pem = fake_idp.key("RS256").private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = {"alg": "HS256", "kid": fake_idp.key("RS256").kid, "typ": "JWT"}
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(fake_idp.claims(client_id)).encode())
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    assert_token_denied(call(api, signing_input + "." + b64(signature)), 401, "token_algorithm_not_allowed")


@pytest.mark.parametrize("missing", ["exp", "cid"])
def test_a_token_missing_a_required_claim_is_refused(api: PublishedApi, fake_idp: FakeIdp, client_id: str, missing: str) -> None:
    claims = fake_idp.claims(client_id)
    del claims[missing]
    assert_token_denied(call(api, fake_idp.mint(claims)), 401, "token_claims_invalid")


def test_a_consumer_key_that_is_no_application_key_is_refused(api: PublishedApi, fake_idp: FakeIdp) -> None:
    stranger = fake_idp.add_client()  # exists at the IdP, never mapped to an application
    assert_token_denied(call(api, fake_idp.access_token(stranger.client_id)), 401, "token_client_unknown")


# --- the resident key manager -------------------------------------------------------------
@pytest.fixture(scope="module")
def resident_key(live: LiveMesh, api: PublishedApi) -> Any:
    return generate_key(live, subscribed_app(live, api))


def _kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def test_a_resident_token_is_an_rfc_9068_jwt(live: LiveMesh, resident_key: Any) -> None:
    token = resident_token(live, resident_key)
    header = jwt.get_unverified_header(token)
    assert header["typ"].lower() == "at+jwt"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == public_url(live)
    assert claims["client_id"] == claims["azp"] == resident_key.consumer_key
    for name in ("sub", "aud", "iat", "nbf", "exp", "jti", "org"):
        assert name in claims, name
    jwks = http_get(live.settings, public_url(live) + "/oauth2/jwks").json()
    assert header["kid"] in {key["kid"] for key in jwks["keys"]}


def test_a_token_signed_with_the_previous_key_still_works_after_a_rotation(live: LiveMesh, api: PublishedApi, resident_key: Any) -> None:
    before = resident_token(live, resident_key)
    assert_allowed(eventually(lambda: call(api, before), 200))
    live.admin.rotate_signing_keys()
    after = resident_token(live, resident_key)
    assert _kid(after) != _kid(before), "the rotation did not change the signing key"
    jwks = http_get(live.settings, public_url(live) + "/oauth2/jwks").json()
    assert {_kid(before), _kid(after)} <= {key["kid"] for key in jwks["keys"]}
    # The new kid is unknown to authz_server's cached JWKS until it refreshes.
    assert_allowed(eventually(lambda: call(api, after), 200, timeout=JWKS_MIN_REFRESH_SECONDS + PROPAGATION_SECONDS))
    assert_allowed(call(api, before))


def test_a_revoked_resident_jwt_is_refused(live: LiveMesh, api: PublishedApi, resident_key: Any) -> None:
    token = resident_token(live, resident_key)
    kept = resident_token(live, resident_key)
    assert_allowed(eventually(lambda: call(api, token), 200))
    revoke(live, resident_key, token)
    response = eventually(lambda: call(api, token), 401, "token_revoked")
    assert_token_denied(response, 401, "token_revoked")
    assert_allowed(call(api, kept))
