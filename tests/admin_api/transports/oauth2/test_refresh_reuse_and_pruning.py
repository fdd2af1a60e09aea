"""Issue 14: a reused refresh token revokes its whole grant family (RFC 9700 §4.14.2), the
authorization code's lifetime is the deployment's setting, and expired tokens and codes
are pruned by admin_api's pruning loop."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from sqlalchemy import func, select

from admin_api.db.audit_models import AuditRecord
from admin_api.db.oauth_models import AuthorizationCode, OAuthToken, RevokedToken
from admin_api.db.types import utcnow
from admin_api.sync.pruning import ChangeLogPruner, prune_oauth_tokens
from admin_api.transports.oauth2.grants import REUSE_AUDIT_METHOD
from portcullis_shared.clock_leeway import MAX_LEEWAY_SECONDS
from portcullis_shared.credentials import credential_hash
from tests.admin_api.transports.oauth2.conftest import (
    OWNER,
    OWNER_PASSWORD,
    OAuthEnv,
    authorization_params,
    code_from,
    login,
    new_verifier,
    s256,
)
from tests.admin_api.transports.oauth2.test_grants import assert_oauth_error


def _password_grant(oauth: OAuthEnv, client) -> dict:
    response = oauth.token({"grant_type": "password", "username": OWNER, "password": OWNER_PASSWORD,
                            "scope": "menu:read"}, client)
    assert response.status_code == 200, response.text
    return response.json()


def _refresh(oauth: OAuthEnv, client, refresh_token: str):
    return oauth.token({"grant_type": "refresh_token", "refresh_token": refresh_token}, client)


def test_a_reused_refresh_token_revokes_the_whole_grant_family(oauth: OAuthEnv) -> None:
    client = oauth.new_client()
    first = _password_grant(oauth, client)
    second = _refresh(oauth, client, first["refresh_token"]).json()
    third = _refresh(oauth, client, second["refresh_token"]).json()
    other_grant = _password_grant(oauth, client)   # the same client's other grant is left alone

    # A thief replays the first refresh token (the legitimate client moved on twice).
    assert_oauth_error(_refresh(oauth, client, first["refresh_token"]), 400, "invalid_grant")

    for token in (third["access_token"], third["refresh_token"], second["access_token"], first["access_token"]):
        assert oauth.introspect(token)["active"] is False
    assert_oauth_error(_refresh(oauth, client, third["refresh_token"]), 400, "invalid_grant")
    assert oauth.introspect(other_grant["access_token"])["active"] is True
    assert _refresh(oauth, client, other_grant["refresh_token"]).status_code == 200

    with oauth.store.read() as session:
        # Every JWT access token of the family reaches authz_server as revoked.
        revoked = set(session.scalars(select(RevokedToken.id)))
        grant_id = session.scalars(select(OAuthToken.grant_id).where(
            OAuthToken.token_hash == credential_hash(first["refresh_token"]))).one()
        family = session.scalars(select(OAuthToken).where(OAuthToken.grant_id == grant_id,
                                                          OAuthToken.kind == "access_token")).all()
        assert len(family) == 3 and {row.id for row in family} <= revoked
        records = session.scalars(select(AuditRecord).where(AuditRecord.method == REUSE_AUDIT_METHOD)).all()
    assert len(records) == 1 and records[0].subject == client.consumer_key
    # Still live when the first token came back: the first three access tokens and the third refresh token.
    assert "4 live token(s)" in records[0].detail and first["refresh_token"] not in records[0].detail


def test_a_refresh_token_of_another_client_revokes_nothing(oauth: OAuthEnv) -> None:
    owner, intruder = oauth.new_client(), oauth.new_client(environment="SANDBOX")
    grant = _password_grant(oauth, owner)
    _refresh(oauth, owner, grant["refresh_token"])
    assert_oauth_error(_refresh(oauth, intruder, grant["refresh_token"]), 400, "invalid_grant")
    with oauth.store.read() as session:
        assert session.scalar(select(func.count()).select_from(AuditRecord)
                              .where(AuditRecord.method == REUSE_AUDIT_METHOD)) == 0


def test_the_authorization_code_lifetime_is_the_setting(oauth: OAuthEnv) -> None:
    oauth.store.config = dataclasses.replace(oauth.store.config, authorization_code_seconds=42.0)
    client = oauth.new_client(pkce_mandatory=True)
    verifier = new_verifier()
    code_from(login(oauth, authorization_params(client, code_challenge=s256(verifier), code_challenge_method="S256")))
    with oauth.store.read() as session:
        row = session.scalars(select(AuthorizationCode).where(AuthorizationCode.consumer_key == client.consumer_key)).one()
        assert row.expires_at - row.created_at == timedelta(seconds=42)


def test_expired_tokens_and_codes_are_pruned_live_ones_stay(oauth: OAuthEnv) -> None:
    client = oauth.new_client(pkce_mandatory=True)
    live = _password_grant(oauth, client)
    expired = _password_grant(oauth, client)
    oauth.http.post("/oauth2/revoke", data={"token": expired["access_token"]}, auth=client.basic)
    code_from(login(oauth, authorization_params(client, code_challenge=s256(new_verifier()),
                                                code_challenge_method="S256")))
    past = utcnow() - timedelta(seconds=1)
    with oauth.store.write() as writer:
        grant_id = writer.session.scalars(select(OAuthToken.grant_id).where(
            OAuthToken.revoked_at.is_not(None))).first()
        for row in writer.session.scalars(select(OAuthToken).where(OAuthToken.grant_id == grant_id)):
            row.expires_at = past
        for row in writer.session.scalars(select(RevokedToken)):
            row.expires_at = past - timedelta(seconds=MAX_LEEWAY_SECONDS)   # refused beyond any leeway
        for row in writer.session.scalars(select(AuthorizationCode)):
            row.expires_at = past

    pruner = ChangeLogPruner(oauth.store, timedelta(days=7))
    pruner.prune_once()   # the pruning loop's round

    with oauth.store.read() as session:
        assert session.scalars(select(OAuthToken).where(OAuthToken.grant_id == grant_id)).all() == []
        assert session.scalar(select(func.count()).select_from(AuthorizationCode)) == 0
        assert session.scalar(select(func.count()).select_from(RevokedToken)) == 0
        assert session.scalar(select(func.count()).select_from(OAuthToken)) == 2   # the live grant's pair
    assert oauth.introspect(live["access_token"])["active"] is True
    assert prune_oauth_tokens(oauth.store) == 0


def test_a_revocation_outlives_its_token_by_the_largest_leeway(oauth: OAuthEnv) -> None:
    """Regression (issue 14): RevokedToken rows were pruned at the token's `exp`, while
    authz_server accepts a JWT until `exp` plus its key manager's leeway (up to
    MAX_LEEWAY_SECONDS): the revocation went before the token stopped being accepted."""
    client = oauth.new_client(pkce_mandatory=True)
    recent = _password_grant(oauth, client)
    older = _password_grant(oauth, client)
    for issued in (recent, older):
        oauth.http.post("/oauth2/revoke", data={"token": issued["access_token"]}, auth=client.basic)
    now = utcnow()
    with oauth.store.write() as writer:
        rows = writer.session.scalars(select(RevokedToken).order_by(RevokedToken.id)).all()
        assert len(rows) == 2
        rows[0].expires_at = now - timedelta(seconds=1)                        # within any leeway: kept
        rows[1].expires_at = now - timedelta(seconds=MAX_LEEWAY_SECONDS + 1)   # beyond any leeway: pruned
        kept = rows[0].id

    ChangeLogPruner(oauth.store, timedelta(days=7)).prune_once()

    with oauth.store.read() as session:
        assert set(session.scalars(select(RevokedToken.id))) == {kept}
