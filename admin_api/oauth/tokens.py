"""Issuing, finding and revoking the resident key manager's tokens.

Access tokens are JWTs (RFC 9068 shape, signed by the active signing key) or opaque
reference tokens (`pct_` + 43 url-safe characters); refresh tokens are opaque (`pcr_`).
Every token is recorded by its SHA-256 with its metadata, JWTs included, so that
introspection and revocation treat both formats alike. Revoking a JWT access token also
records its jti as a synced RevokedToken (through the outbox, same transaction) so that
every authz_server denies it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from admin_api.db.oauth_models import AuthorizationCode, OAuthToken, RevokedToken
from admin_api.oauth.signing_keys import SigningKeys
from admin_api.store.unit_of_work import Writer, new_id
from portcullis_shared.clock_leeway import MAX_LEEWAY_SECONDS
from portcullis_shared.credentials import credential_hash, new_opaque_credential

ACCESS_TOKEN = "access_token"
REFRESH_TOKEN = "refresh_token"
JWT_FORMAT = "jwt"
REFERENCE_FORMAT = "reference"
REFRESH_FORMAT = "refresh"
REFERENCE_TOKEN_PREFIX = "pct_"
REFRESH_TOKEN_PREFIX = "pcr_"
JWT_TYPE = "at+jwt"   # RFC 9068 §2.1


class GrantConsumed(Exception):
    """The refresh token or authorization code was used already (or expired meanwhile)."""


@dataclass(frozen=True)
class TokenSpec:
    """What one token response is issued for."""

    organization_id: str
    key_manager_id: str
    application_key_id: str
    consumer_key: str
    grant_type: str
    subject: str          # the user's id, or the consumer key for client_credentials
    username: str
    scope: str            # space-separated, already limited to the entitled scopes
    reference: bool       # opaque reference token instead of a JWT
    access_validity: int  # seconds
    refresh_validity: int | None   # None: no refresh token
    grant_id: str | None = None                  # continue a grant (refresh); None: a new one
    consumes_refresh_token_id: str | None = None  # refresh rotation: used up in the same transaction
    consumes_code_hash: str | None = None         # authorization code: deleted in the same transaction


def _consume(session: Session, spec: TokenSpec, now: datetime) -> None:
    # Conditional writes inside the issuing transaction: of two concurrent uses of one
    # refresh token or code, exactly one gets tokens.
    if spec.consumes_refresh_token_id is not None:
        result = session.execute(
            update(OAuthToken)
            .where(OAuthToken.id == spec.consumes_refresh_token_id, OAuthToken.revoked_at.is_(None),
                   OAuthToken.expires_at > now)
            .values(revoked_at=now))
        if result.rowcount != 1:
            raise GrantConsumed("the refresh token was used already")
    if spec.consumes_code_hash is not None:
        result = session.execute(
            delete(AuthorizationCode)
            .where(AuthorizationCode.code_hash == spec.consumes_code_hash, AuthorizationCode.expires_at > now))
        if result.rowcount != 1:
            raise GrantConsumed("the authorization code was used already")


def issue(writer: Writer, keys: SigningKeys, issuer: str, spec: TokenSpec, now: datetime) -> dict[str, object]:
    """Record and return a token response (RFC 6749 §5.1) in the caller's write transaction."""
    session = writer.session
    _consume(session, spec, now)
    grant_id = spec.grant_id or new_id()
    jti = new_id()
    expires_at = now + timedelta(seconds=spec.access_validity)
    kid = ""
    if spec.reference:
        access_token = new_opaque_credential(REFERENCE_TOKEN_PREFIX)
    else:
        signer = keys.signer(session)
        kid = signer.kid
        claims = {
            "iss": issuer,
            "sub": spec.subject,
            "aud": spec.consumer_key,
            "azp": spec.consumer_key,
            "client_id": spec.consumer_key,
            "scope": spec.scope,
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
            "jti": jti,
            "org": spec.organization_id,
        }
        access_token = jwt.encode(claims, signer.private_key, algorithm=signer.algorithm,
                                  headers={"typ": JWT_TYPE, "kid": signer.kid})
    session.add(_row(spec, jti, access_token, ACCESS_TOKEN, REFERENCE_FORMAT if spec.reference else JWT_FORMAT,
                     kid, grant_id, now, expires_at))
    response: dict[str, object] = {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": spec.access_validity,
        "scope": spec.scope,
    }
    if spec.refresh_validity is not None:
        refresh_token = new_opaque_credential(REFRESH_TOKEN_PREFIX)
        session.add(_row(spec, new_id(), refresh_token, REFRESH_TOKEN, REFRESH_FORMAT, "", grant_id, now,
                         now + timedelta(seconds=spec.refresh_validity)))
        response["refresh_token"] = refresh_token
    session.flush()
    return response


def _row(spec: TokenSpec, token_id: str, value: str, kind: str, token_format: str, kid: str, grant_id: str,
         now: datetime, expires_at: datetime) -> OAuthToken:
    return OAuthToken(id=token_id, token_hash=credential_hash(value), kind=kind, format=token_format, kid=kid,
                      organization_id=spec.organization_id, key_manager_id=spec.key_manager_id,
                      application_key_id=spec.application_key_id, consumer_key=spec.consumer_key,
                      grant_type=spec.grant_type, subject=spec.subject, username=spec.username,
                      scope=spec.scope, grant_id=grant_id, issued_at=now, expires_at=expires_at,
                      revoked_at=None)


def find(session: Session, value: str) -> OAuthToken | None:
    """The token with this value, whatever its state (callers check expiry and revocation)."""
    if not value or len(value) > 16_384:
        return None
    return session.scalars(select(OAuthToken).where(OAuthToken.token_hash == credential_hash(value))).first()


def is_live(row: OAuthToken, now: datetime) -> bool:
    return row.revoked_at is None and row.expires_at > now


def revoke(writer: Writer, row: OAuthToken, now: datetime) -> None:
    """Revoke a token (RFC 7009). A refresh token takes the access tokens of its grant
    with it (§2.1); each access token revoked becomes a synced RevokedToken (a JWT by
    its jti, a reference token by its digest)."""
    if row.kind == REFRESH_TOKEN:
        revoke_grant(writer, row.grant_id, now)
    else:
        _revoke_rows(writer, [row], now)
    _prune_revoked(writer, now)


def revoke_grant(writer: Writer, grant_id: str, now: datetime) -> int:
    """Revoke every live token of one grant family (its access and refresh tokens, all
    rotations); how many were live."""
    family = writer.session.scalars(select(OAuthToken).where(OAuthToken.grant_id == grant_id)).all()
    return _revoke_rows(writer, family, now)


def _revoke_rows(writer: Writer, rows, now: datetime) -> int:
    revoked = 0
    for target in rows:
        if not is_live(target, now):
            continue
        target.revoked_at = now
        revoked += 1
        if target.kind == ACCESS_TOKEN and target.format in (JWT_FORMAT, REFERENCE_FORMAT):
            # A JWT by its jti; a reference token by its SHA-256 (the stored token_hash, 64
            # hex digits, never a jti), which authz_server checks before its introspection
            # cache: either way the gateway refuses it as soon as the change arrives.
            revoked_id = target.id if target.format == JWT_FORMAT else target.token_hash
            writer.upsert(RevokedToken(id=revoked_id, organization_id=target.organization_id,
                                       key_manager_id=target.key_manager_id, expires_at=target.expires_at))
    return revoked


def prune_expired(writer: Writer, now: datetime) -> int:
    """Delete expired tokens and codes, and revocation records of tokens expired beyond any
    leeway (admin_api's pruning loop); how many rows went. An expired token is refused by
    introspection whether or not its row remains."""
    session = writer.session
    pruned = session.execute(delete(OAuthToken).where(OAuthToken.expires_at <= now)).rowcount or 0
    pruned += session.execute(delete(AuthorizationCode).where(AuthorizationCode.expires_at <= now)).rowcount or 0
    return pruned + _prune_revoked(writer, now, limit=10_000)


def _prune_revoked(writer: Writer, now: datetime, limit: int = 100) -> int:
    # Kept until exp + the largest leeway a key manager may allow: authz_server accepts a
    # JWT until exp + its key manager's leeway, so a record gone at exp would let a revoked
    # token back in for that long (and a snapshot sent meanwhile would lack it). Replicas
    # drop such records on their own; deleting them through the outbox keeps the snapshot
    # and the change log in agreement.
    refused_anyway = now - timedelta(seconds=MAX_LEEWAY_SECONDS)
    expired = writer.session.scalars(
        select(RevokedToken).where(RevokedToken.expires_at <= refused_anyway).limit(limit)).all()
    for record in expired:
        writer.delete(record)
    return len(expired)
