"""RFC 7662 introspection (sync token, admin credential or the token's own client) and RFC 7009 revocation,
with revoked JWTs recorded in the outbox and in the Watch snapshot."""

from __future__ import annotations

from portcullis_shared.credentials import credential_hash

from datetime import timedelta

import jwt
import pytest
from sqlalchemy import select, update

from admin_api.db.models import ChangeRecord
from admin_api.db.oauth_models import OAuthToken
from admin_api.db.types import utcnow
from admin_api.sync import snapshot
from portcullis.sync.v1 import sync_pb2
from tests.admin_api.transports.oauth2.conftest import ISSUER, OWNER, OWNER_PASSWORD, OAuthEnv


def password_tokens(env: OAuthEnv, client, scope: str = "menu:read") -> dict:
    response = env.token({"grant_type": "password", "username": OWNER, "password": OWNER_PASSWORD,
                          "scope": scope}, client)
    assert response.status_code == 200, response.text
    return response.json()


def revoked_records(env: OAuthEnv) -> list[sync_pb2.RevokedTokenRecord]:
    with env.store.read() as session:
        rows = session.scalars(select(ChangeRecord).where(ChangeRecord.entity_kind == "REVOKED_TOKEN")
                               .order_by(ChangeRecord.revision)).all()
        return [sync_pb2.PolicyEntity.FromString(row.payload).revoked_token for row in rows if row.op == "upsert"]


@pytest.mark.parametrize("token_type", ["JWT", "REFERENCE"])
def test_introspection_answers_every_field(oauth: OAuthEnv, token_type: str) -> None:
    client = oauth.new_client(token_type=token_type)
    token = password_tokens(oauth, client)["access_token"]
    info = oauth.introspect(token)
    assert set(info) >= {"active", "scope", "client_id", "username", "sub", "exp", "iat", "nbf", "iss",
                         "token_type", "aud", "jti"}
    assert info["active"] is True and info["iss"] == ISSUER and info["token_type"] == "Bearer"
    assert info["client_id"] == info["aud"] == client.consumer_key and info["username"] == OWNER
    if token_type == "JWT":
        claims = jwt.decode(token, options={"verify_signature": False})
        assert (info["jti"], info["exp"], info["iat"], info["sub"]) == (
            claims["jti"], claims["exp"], claims["iat"], claims["sub"])


def test_introspection_by_a_resident_client(oauth: OAuthEnv) -> None:
    client = oauth.new_client()
    token = password_tokens(oauth, client)["access_token"]
    assert oauth.introspect(token, headers={}, auth=client.basic)["active"] is True


def test_introspection_needs_a_caller(oauth: OAuthEnv) -> None:
    client = oauth.new_client()
    token = password_tokens(oauth, client)["access_token"]
    for headers, auth in (({}, None), ({}, (client.consumer_key, "pcsec_wrong")),
                          ({"Authorization": "Bearer pcs_not-the-sync-token"}, None)):
        response = oauth.http.post("/oauth2/introspect", data={"token": token}, headers=headers, auth=auth)
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "invalid_client"
        assert response.headers["www-authenticate"].startswith("Basic")


def test_refresh_tokens_never_look_active_to_resource_servers(oauth: OAuthEnv) -> None:
    client = oauth.new_client()
    refresh = password_tokens(oauth, client)["refresh_token"]
    assert oauth.introspect(refresh) == {"active": False}
    assert oauth.introspect(refresh, headers={}, auth=client.basic)["active"] is True


@pytest.mark.parametrize("token", ["pct_" + "A" * 43, "garbage", "", "eyJhbGciOiJub25lIn0.e30."])
def test_unknown_tokens_are_inactive(oauth: OAuthEnv, token: str) -> None:
    assert oauth.introspect(token) == {"active": False}


@pytest.mark.parametrize("token_type", ["JWT", "REFERENCE"])
def test_expired_token_is_inactive(oauth: OAuthEnv, token_type: str) -> None:
    client = oauth.new_client(token_type=token_type)
    token = password_tokens(oauth, client)["access_token"]
    with oauth.store.write() as writer:
        writer.session.execute(update(OAuthToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert oauth.introspect(token) == {"active": False}


def test_revoke_jwt_access_token(oauth: OAuthEnv) -> None:
    client = oauth.new_client()
    token = password_tokens(oauth, client)["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    response = oauth.http.post("/oauth2/revoke", data={"token": token, "token_type_hint": "access_token"},
                               auth=client.basic)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert oauth.introspect(token) == {"active": False}
    [record] = revoked_records(oauth)
    assert record.id == claims["jti"] and record.expires_at_unix == claims["exp"]
    assert record.organization_id == "default" and record.key_manager_id
    _, entities = snapshot.load(oauth.store)
    assert [e.revoked_token.id for e in entities if e.HasField("revoked_token")] == [claims["jti"]]


def test_expired_revocations_leave_the_snapshot(oauth: OAuthEnv) -> None:
    from admin_api.db.oauth_models import RevokedToken

    client = oauth.new_client()
    token = password_tokens(oauth, client)["access_token"]
    oauth.http.post("/oauth2/revoke", data={"token": token}, auth=client.basic)
    with oauth.store.write() as writer:
        writer.session.execute(update(RevokedToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    _, entities = snapshot.load(oauth.store)
    assert not [e for e in entities if e.HasField("revoked_token")]


def test_revoke_reference_token_syncs_a_record_by_its_digest(oauth: OAuthEnv) -> None:
    """authz_server caches introspection answers: the record by digest (never the token)
    lets it refuse a revoked pct_ token at once (issue 18, item 5)."""
    client = oauth.new_client(token_type="REFERENCE")
    token = password_tokens(oauth, client)["access_token"]
    assert oauth.http.post("/oauth2/revoke", data={"token": token}, auth=client.basic).status_code == 200
    assert oauth.introspect(token) == {"active": False}
    assert [record.id for record in revoked_records(oauth)] == [credential_hash(token)]


def test_revoke_refresh_token_takes_its_access_tokens(oauth: OAuthEnv) -> None:
    client = oauth.new_client()
    tokens = password_tokens(oauth, client)
    response = oauth.http.post("/oauth2/revoke", data={"token": tokens["refresh_token"],
                                                       "token_type_hint": "refresh_token"}, auth=client.basic)
    assert response.status_code == 200
    refreshed = oauth.token({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}, client)
    assert refreshed.json()["error"] == "invalid_grant"
    assert oauth.introspect(tokens["access_token"]) == {"active": False}
    assert len(revoked_records(oauth)) == 1


def test_revoke_unknown_token_is_ok(oauth: OAuthEnv) -> None:
    client = oauth.new_client()
    response = oauth.http.post("/oauth2/revoke", data={"token": "pct_unknown"}, auth=client.basic)
    assert response.status_code == 200  # RFC 7009 §2.2


def test_revoke_token_of_another_client_refused(oauth: OAuthEnv) -> None:
    mine, other = oauth.new_client(), oauth.new_client(environment="SANDBOX")
    token = password_tokens(oauth, mine)["access_token"]
    response = oauth.http.post("/oauth2/revoke", data={"token": token}, auth=other.basic)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert oauth.introspect(token)["active"] is True


def test_revoke_needs_client_authentication(oauth: OAuthEnv) -> None:
    client = oauth.new_client()
    token = password_tokens(oauth, client)["access_token"]
    response = oauth.http.post("/oauth2/revoke", data={"token": token},
                               headers={"Authorization": f"Bearer {oauth.sync_token}"})
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert oauth.introspect(token)["active"] is True


def test_revoke_without_token_is_invalid_request(oauth: OAuthEnv) -> None:
    client = oauth.new_client()
    response = oauth.http.post("/oauth2/revoke", data={}, auth=client.basic)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
