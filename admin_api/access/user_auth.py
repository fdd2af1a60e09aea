"""Admin callers from the resident key manager's access tokens (users, not stored credentials).

A JWT is verified here, without HTTP, against the resident signing keys in the database
(alg allow-list, `typ: at+jwt`, iss = the public URL, exp required, audience = the
token's client) and must also be a recorded, live access token; an opaque `pct_`
reference token is looked up by its hash. The token's user (for client_credentials: the
application's owner) must be a user of the token's organization; its roles are read from
the users table on every call, so a role change applies at once.

The admin API is the token's audience only when it carries the scope `portcullis:admin`
and its client is still a first-party application key (portcullis_shared.scopes): a
token of any other client of the organization, which keeps working at the gateway, is
refused here. Every failure is Unauthenticated with a short reason; never the token
itself.
"""

from __future__ import annotations

from datetime import datetime

import jwt
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from sqlalchemy import select
from sqlalchemy.orm import Session

from admin_api.access.caller import USER_ROLES, Caller, Credential
from admin_api.db import models
from admin_api.db.oauth_models import OAuthToken, RevokedToken, SigningKey
from admin_api.errors import Unauthenticated
from admin_api.oauth import tokens
from admin_api.store.unit_of_work import Store
from portcullis_shared.scopes import ADMIN_SCOPE, BUILT_IN_CLIENTS

ALGORITHMS = ("ES256", "RS256")   # what the resident key manager signs with
LEEWAY_SECONDS = 30
CLIENT_CREDENTIALS = "client_credentials"
_REQUIRED_CLAIMS = ["iss", "sub", "aud", "exp", "iat", "jti", "org"]
_ROLE_NAMES = {role.value: role for role in USER_ROLES}


def looks_like_resident_token(token: str) -> bool:
    return token.startswith(tokens.REFERENCE_TOKEN_PREFIX) or token.count(".") == 2


def caller_for_token(store: Store, token: str, now: datetime) -> Caller:
    """The user holding this resident access token; Unauthenticated otherwise."""
    with store.read() as session:
        row = tokens.find(session, token)
        if row is None or row.kind != tokens.ACCESS_TOKEN:
            raise Unauthenticated("invalid credential")
        if row.format == tokens.JWT_FORMAT:
            _verify_jwt(session, token, row, store.config.public_url.rstrip("/"))
            credential = Credential.JWT
        elif row.format == tokens.REFERENCE_FORMAT:
            credential = Credential.REFERENCE_TOKEN
        else:
            raise Unauthenticated("invalid credential")
        if row.revoked_at is not None or session.get(RevokedToken, row.id) is not None:
            raise Unauthenticated("the token has been revoked")
        if row.expires_at <= now:
            raise Unauthenticated("the token has expired")
        _check_key_manager(session, row)
        _check_audience(session, row)
        user = _user(session, row)
        roles = frozenset(_ROLE_NAMES[name] for name in user.roles if name in _ROLE_NAMES)
        return Caller(subject=user.username, organization_id=row.organization_id, roles=roles,
                      credential=credential)


def _verify_jwt(session: Session, token: str, row: OAuthToken, issuer: str) -> None:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Unauthenticated("invalid credential") from None
    if header.get("typ") != tokens.JWT_TYPE:
        raise Unauthenticated("the token is not an access token (typ at+jwt)")
    kid = header.get("kid")
    key_row = session.get(SigningKey, kid) if isinstance(kid, str) and kid == row.kid else None
    if key_row is None or key_row.algorithm not in ALGORITHMS:
        raise Unauthenticated("the token's signing key is unknown")
    codec = ECAlgorithm if key_row.algorithm == "ES256" else RSAAlgorithm
    public_key = codec.from_jwk(dict(key_row.public_jwk))
    try:
        claims = jwt.decode(token, public_key, algorithms=[key_row.algorithm], issuer=issuer,
                            audience=row.consumer_key, leeway=LEEWAY_SECONDS,
                            options={"require": _REQUIRED_CLAIMS, "strict_aud": True})
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("the token has expired") from None
    except jwt.PyJWTError:
        raise Unauthenticated("invalid credential") from None
    if claims["jti"] != row.id or claims["org"] != row.organization_id:
        raise Unauthenticated("invalid credential")


def _check_audience(session: Session, row: OAuthToken) -> None:
    if ADMIN_SCOPE not in row.scope.split():
        raise Unauthenticated(f"this token is not for the admin API: it lacks the scope {ADMIN_SCOPE!r}, which only "
                              "first-party clients (the portcullis CLI, the developer portal, application keys an "
                              "admin marked first_party) obtain; it still works at the gateway")
    if row.application_key_id in BUILT_IN_CLIENTS:
        return   # the developer portal: first-party by construction, never stored
    key = session.get(models.ApplicationKey, row.application_key_id)
    if key is None or not (key.settings or {}).get("first_party"):
        raise Unauthenticated("this token's client is no longer a first-party client: the admin API refuses its "
                              "tokens")


def _check_key_manager(session: Session, row: OAuthToken) -> None:
    km = session.get(models.KeyManager, row.key_manager_id)
    if km is None or km.organization_id != row.organization_id or km.type != "RESIDENT":
        raise Unauthenticated("the token was not issued by this organization's resident key manager")
    if not km.enabled:
        raise Unauthenticated("the resident key manager of this organization is disabled")


def _user(session: Session, row: OAuthToken) -> models.User:
    if row.grant_type == CLIENT_CREDENTIALS:
        # The application acts as its owner (recorded as the token's username).
        user = session.scalars(select(models.User).where(models.User.organization_id == row.organization_id,
                                                         models.User.username == row.username)).first()
    else:
        user = session.get(models.User, row.subject)
    if user is None or user.organization_id != row.organization_id or not row.username \
            or user.username != row.username:
        raise Unauthenticated("the token's user no longer exists")
    return user
