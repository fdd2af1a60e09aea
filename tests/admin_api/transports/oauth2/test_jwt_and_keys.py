"""Resident JWT access tokens: RFC 9068 shape, verified with the published JWKS (PyJWT),
signing-key rotation with overlap, the SigningKeyService, and nothing secret in clear
in the database file."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest
from sqlalchemy import select, update

from admin_api.db.oauth_models import OAuthToken, SigningKey
from admin_api.db.types import utcnow
from admin_api.oauth.signing_keys import RETIREMENT_MARGIN
from tests.admin_api.transports.oauth2.conftest import ISSUER, OWNER, OWNER_PASSWORD, OAuthEnv


def verify(env: OAuthEnv, token: str, audience: str) -> dict:
    """Verify as a resource server would: the kid's key from the published JWKS."""
    jwks = jwt.PyJWKSet.from_dict(env.http.get("/oauth2/jwks").json())
    header = jwt.get_unverified_header(token)
    key = next(k for k in jwks.keys if k.key_id == header["kid"])
    return jwt.decode(token, key=key, algorithms=["ES256", "RS256"], audience=audience, issuer=ISSUER,
                      options={"require": ["exp", "iat", "nbf", "iss", "sub", "aud", "jti"]})


def test_jwt_header_and_claims(oauth: OAuthEnv) -> None:
    client = oauth.new_client(access_token_validity_seconds=900)
    token = oauth.token({"grant_type": "client_credentials", "scope": "menu:read open"}, client).json()
    header = jwt.get_unverified_header(token["access_token"])
    assert header["typ"] == "at+jwt" and header["alg"] == "ES256" and header["kid"]
    claims = verify(oauth, token["access_token"], client.consumer_key)
    assert set(claims) == {"iss", "sub", "aud", "azp", "client_id", "scope", "iat", "nbf", "exp", "jti", "org"}
    assert claims["sub"] == client.consumer_key  # client_credentials
    assert claims["aud"] == claims["azp"] == claims["client_id"] == client.consumer_key
    assert claims["scope"] == "menu:read open"
    assert claims["org"] == "default"
    assert claims["exp"] - claims["iat"] == 900 and claims["nbf"] == claims["iat"]


def test_password_jwt_subject_is_the_user_id(oauth: OAuthEnv) -> None:
    client = oauth.new_client()
    token = oauth.token({"grant_type": "password", "username": OWNER, "password": OWNER_PASSWORD}, client).json()
    claims = verify(oauth, token["access_token"], client.consumer_key)
    users = oauth.admin_call("GET", "/v1/users", 200)["users"]
    assert claims["sub"] == next(u["id"] for u in users if u["username"] == OWNER)


def test_rotation_overlap(oauth: OAuthEnv) -> None:
    client = oauth.new_client()
    old_token = oauth.token({"grant_type": "client_credentials"}, client).json()["access_token"]
    old_kid = jwt.get_unverified_header(old_token)["kid"]

    rotated = oauth.admin_call("POST", "/v1/signing-keys/rotate", 201, json={})
    assert rotated["state"] == "ACTIVE" and rotated["kid"] != old_kid and rotated["algorithm"] == "ES256"

    new_token = oauth.token({"grant_type": "client_credentials"}, client).json()["access_token"]
    assert jwt.get_unverified_header(new_token)["kid"] == rotated["kid"]
    # Both verify against the published JWKS: the old key overlaps.
    verify(oauth, old_token, client.consumer_key)
    verify(oauth, new_token, client.consumer_key)

    listed = oauth.admin_call("GET", "/v1/signing-keys", 200)["keys"]
    assert [(k["kid"], k["state"]) for k in listed] == [(rotated["kid"], "ACTIVE"), (old_kid, "RETIRED")]
    retired = listed[1]
    old_exp = jwt.decode(old_token, options={"verify_signature": False})["exp"]
    from datetime import datetime
    expires = datetime.fromisoformat(retired["expires_at"].replace("Z", "+00:00"))
    assert expires.timestamp() >= old_exp + RETIREMENT_MARGIN.total_seconds() - 1

    # Once every token it signed has expired (and the margin passed), the old key is pruned.
    with oauth.store.write() as writer:
        writer.session.execute(update(SigningKey).where(SigningKey.kid == old_kid)
                               .values(expires_at=utcnow() - timedelta(seconds=1)))
    kids = [k["kid"] for k in oauth.http.get("/oauth2/jwks").json()["keys"]]
    assert kids == [rotated["kid"]]
    with pytest.raises(StopIteration):
        verify(oauth, old_token, client.consumer_key)
    assert [k["kid"] for k in oauth.admin_call("GET", "/v1/signing-keys", 200)["keys"]] == [rotated["kid"]]


def test_rotate_to_rs256(oauth: OAuthEnv) -> None:
    client = oauth.new_client()
    rotated = oauth.admin_call("POST", "/v1/signing-keys/rotate", 201, json={"algorithm": "RS256"})
    assert rotated["public_jwk"]["kty"] == "RSA" and rotated["public_jwk"]["n"]
    token = oauth.token({"grant_type": "client_credentials"}, client).json()["access_token"]
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    verify(oauth, token, client.consumer_key)


def test_rotate_refuses_unknown_algorithm(oauth: OAuthEnv) -> None:
    response = oauth.http.post("/v1/signing-keys/rotate", json={"algorithm": "HS256"}, headers=oauth.admin)
    assert response.status_code == 400 and response.json()["field"] == "algorithm"


def test_signing_keys_need_the_admin_credential(oauth: OAuthEnv) -> None:
    assert oauth.http.get("/v1/signing-keys").status_code == 401
    sync = {"Authorization": f"Bearer {oauth.sync_token}"}
    assert oauth.http.post("/v1/signing-keys/rotate", json={}, headers=sync).status_code == 401


def test_listing_shows_no_private_material(oauth: OAuthEnv) -> None:
    keys = oauth.admin_call("GET", "/v1/signing-keys", 200)["keys"]
    assert len(keys) == 1
    assert set(keys[0]["public_jwk"]) == {"kty", "kid", "alg", "use", "crv", "x", "y", "n", "e"}
    for key in oauth.http.get("/oauth2/jwks").json()["keys"]:
        assert set(key) == {"kty", "kid", "alg", "use", "crv", "x", "y"}


def test_token_signed_by_a_foreign_key_does_not_verify(oauth: OAuthEnv) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    client = oauth.new_client()
    real = oauth.token({"grant_type": "client_credentials"}, client).json()["access_token"]
    claims = jwt.decode(real, options={"verify_signature": False})
    forged = jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256",
                        headers={"typ": "at+jwt", "kid": jwt.get_unverified_header(real)["kid"]})
    with pytest.raises(jwt.InvalidSignatureError):
        verify(oauth, forged, client.consumer_key)
    # Nor is it known to introspection (only tokens issued here are).
    assert oauth.introspect(forged) == {"active": False}


def test_nothing_secret_in_clear_in_the_database_file(oauth: OAuthEnv) -> None:
    client = oauth.new_client(grant_types=["client_credentials", "password", "refresh_token"])
    reference = oauth.new_client(token_type="REFERENCE", environment="SANDBOX",
                                 grant_types=["client_credentials", "password", "refresh_token"])
    issued = [
        oauth.token({"grant_type": "password", "username": OWNER, "password": OWNER_PASSWORD}, client).json(),
        oauth.token({"grant_type": "password", "username": OWNER, "password": OWNER_PASSWORD}, reference).json(),
    ]
    with oauth.store.read() as session:
        assert session.scalars(select(OAuthToken)).all()
        pem_plain = [row.private_key_encrypted for row in session.scalars(select(SigningKey))]
    oauth.store.db.dispose()  # flush the WAL into the main file
    raw = oauth.db_path.read_bytes()
    for path in oauth.db_path.parent.glob("portcullis.db*"):
        raw += path.read_bytes()
    values = [t["access_token"] for t in issued] + [t["refresh_token"] for t in issued]
    values += oauth.secrets_seen + [OWNER_PASSWORD]
    for value in values:
        assert value.encode() not in raw, value[:8]
    assert b"PRIVATE KEY" not in raw
    assert all(b"PRIVATE KEY" not in blob for blob in pem_plain)
