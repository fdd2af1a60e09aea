"""The resident key manager's grants on authlib (client_credentials, password,
authorization_code with PKCE S256, refresh_token with rotation), and the stored codes and
tokens as the authlib mixins they need."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, OAuth2Request, grants
from authlib.oauth2.rfc7636 import CodeChallenge

from admin_api.access.caller import Caller, Credential
from admin_api.audit import log as audit_log
from admin_api.db.oauth_models import AuthorizationCode, OAuthToken
from admin_api.db.types import utcnow
from admin_api.oauth import tokens
from admin_api.services import failed_logins, users
from admin_api.transports.oauth2.clients import PUBLIC_METHOD, ResidentClient
from portcullis_shared.credentials import credential_hash

SECRET_AUTH = ["client_secret_basic", "client_secret_post"]
ANY_AUTH = SECRET_AUTH + [PUBLIC_METHOD]
REUSE_AUDIT_METHOD = "oauth2/token (refresh token reuse)"

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------ owners

@dataclass(frozen=True)
class Owner:
    """The resource owner a token is issued for, and what the grant consumes."""

    subject: str
    username: str
    grant_id: str | None = None
    consumes_refresh_token_id: str | None = None
    consumes_code_hash: str | None = None


# ------------------------------------------------------------------------ storage views

@dataclass(frozen=True)
class StoredCode:
    """An authorization code as authlib's AuthorizationCodeMixin."""

    code_hash: str
    user_id: str
    username: str
    redirect_uri: str
    scope: str
    code_challenge: str
    code_challenge_method: str

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass(frozen=True)
class StoredToken:
    """A recorded token as authlib's TokenMixin (introspection, revocation, refresh)."""

    id: str
    kind: str
    format: str
    organization_id: str
    consumer_key: str
    subject: str
    username: str
    scope: str
    grant_id: str
    issued_at: int
    expires_at: int
    live: bool

    @classmethod
    def of(cls, row: OAuthToken) -> "StoredToken":
        return cls(id=row.id, kind=row.kind, format=row.format, organization_id=row.organization_id,
                   consumer_key=row.consumer_key, subject=row.subject, username=row.username,
                   scope=row.scope, grant_id=row.grant_id, issued_at=int(row.issued_at.timestamp()),
                   expires_at=int(row.expires_at.timestamp()), live=tokens.is_live(row, utcnow()))

    def check_client(self, client: Any) -> bool:
        return isinstance(client, ResidentClient) and client.client_id == self.consumer_key

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_at - self.issued_at

    def is_expired(self) -> bool:
        return not self.live

    def is_revoked(self) -> bool:
        return not self.live


# ------------------------------------------------------------------------------- grants

class _KnowsItsClient:
    """authlib sets request.client only after some grant hooks ran (e.g. after the
    password grant authenticates the user): set it as soon as the client is known."""

    def authenticate_token_endpoint_client(self) -> ResidentClient:
        client = super().authenticate_token_endpoint_client()  # type: ignore[misc]
        self.request.client = client  # type: ignore[attr-defined]
        return client


class ClientCredentialsGrant(_KnowsItsClient, grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = SECRET_AUTH


class PasswordGrant(_KnowsItsClient, grants.ResourceOwnerPasswordCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = SECRET_AUTH

    def authenticate_user(self, username: str, password: str) -> Owner:
        client: ResidentClient = self.request.client
        identity = users.authenticate_user(client.store, client.organization_id, username, password,
                                           via=failed_logins.PASSWORD_GRANT)
        if identity is None:
            # RFC 6749 §5.2: invalid resource owner credentials are an invalid_grant.
            raise InvalidGrantError("Invalid username or password.")
        return Owner(subject=identity.user_id, username=identity.username)


class AuthorizationCodeGrant(_KnowsItsClient, grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ANY_AUTH

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        client: ResidentClient = request.client
        owner: Owner = request.user
        now = utcnow()
        data = request.payload.data
        challenge = data.get("code_challenge") or ""
        method = data.get("code_challenge_method") or ("plain" if challenge else "")
        with client.store.write() as writer:
            writer.session.add(AuthorizationCode(
                code_hash=credential_hash(code), organization_id=client.organization_id,
                application_key_id=client.info.application_key_id, consumer_key=client.client_id,
                user_id=owner.subject, username=owner.username,
                redirect_uri=request.payload.redirect_uri or "", scope=request.scope or "",
                code_challenge=challenge, code_challenge_method=method,
                created_at=now, expires_at=now + timedelta(seconds=client.store.config.authorization_code_seconds)))

    def query_authorization_code(self, code: str, client: ResidentClient) -> StoredCode | None:
        with client.store.read() as session:
            row = session.get(AuthorizationCode, credential_hash(code))
            if row is None or row.consumer_key != client.client_id or row.expires_at <= utcnow():
                return None
            return StoredCode(code_hash=row.code_hash, user_id=row.user_id, username=row.username,
                              redirect_uri=row.redirect_uri, scope=row.scope, code_challenge=row.code_challenge,
                              code_challenge_method=row.code_challenge_method)

    def delete_authorization_code(self, authorization_code: StoredCode) -> None:
        pass  # consumed (deleted) in the issuing transaction, see tokens.issue

    def authenticate_user(self, authorization_code: StoredCode) -> Owner:
        return Owner(subject=authorization_code.user_id, username=authorization_code.username,
                     consumes_code_hash=authorization_code.code_hash)


class RefreshTokenGrant(_KnowsItsClient, grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ANY_AUTH
    INCLUDE_NEW_REFRESH_TOKEN = True   # rotation: each refresh token is used once

    def authenticate_refresh_token(self, refresh_token: str) -> StoredToken | None:
        client: ResidentClient = self.request.client
        now = utcnow()
        with client.store.read() as session:
            row = tokens.find(session, refresh_token)
            if row is None or row.kind != tokens.REFRESH_TOKEN or row.consumer_key != client.client_id:
                return None
            if tokens.is_live(row, now):
                return StoredToken.of(row)
            reused = row.revoked_at is not None and row.expires_at > now
            grant_id, token_id = row.grant_id, row.id
        if reused:
            revoke_reused_family(client, grant_id, token_id)
        return None

    def authenticate_user(self, refresh_token: StoredToken) -> Owner:
        return Owner(subject=refresh_token.subject, username=refresh_token.username,
                     grant_id=refresh_token.grant_id, consumes_refresh_token_id=refresh_token.id)

    def revoke_old_credential(self, refresh_token: StoredToken) -> None:
        pass  # used up in the issuing transaction, see tokens.issue


def revoke_reused_family(client: ResidentClient, grant_id: str, token_id: str) -> None:
    """A refresh token used already (rotated) or revoked is presented again: either its
    client or a thief holds a copy, and which one cannot be told. RFC 9700 §4.14.2: revoke
    the whole grant family, so the other holder's current tokens stop working too."""
    now = utcnow()
    with client.store.write() as writer:
        revoked = tokens.revoke_grant(writer, grant_id, now)
        if not revoked:
            log.info("revoked refresh token %s of client %s presented again (grant %s already revoked)",
                     token_id, client.client_id, grant_id)
            return
        who = Caller(subject=client.client_id, organization_id=client.organization_id,
                     credential=Credential.OAUTH_CLIENT)
        audit_log.append(writer.session, audit_log.Entry(who, REUSE_AUDIT_METHOD, "oauth_grant", grant_id),
                         audit_log.SUCCEEDED, target_id=grant_id,
                         detail=f"refresh token {token_id} presented after its use: {revoked} live token(s) "
                                "of its grant revoked")
    log.warning("refresh token %s of client %s reused: grant %s revoked (%d live tokens)",
                token_id, client.client_id, grant_id, revoked)


class Pkce(CodeChallenge):
    """RFC 7636 with the client's options: required when the client says so (and always
    for public clients); `plain` only when the client allows it. A request without
    `code_challenge_method` means `plain` (RFC 7636 §4.3), so it is refused likewise."""

    def validate_code_challenge(self, grant: grants.AuthorizationCodeGrant, redirect_uri: str) -> None:
        super().validate_code_challenge(grant, redirect_uri)
        client: ResidentClient = grant.request.client
        data = grant.request.payload.data
        challenge = data.get("code_challenge")
        if not challenge:
            if client.pkce_mandatory:
                raise InvalidRequestError("This client must send a PKCE 'code_challenge' (S256).")
            return
        method = data.get("code_challenge_method") or "plain"
        if method == "plain" and not client.pkce_plain_allowed:
            raise InvalidRequestError("This client may not use the 'plain' code_challenge_method; use S256.")

    def validate_code_verifier(self, grant: grants.AuthorizationCodeGrant, result: object) -> None:
        code: StoredCode = grant.request.authorization_code
        client: ResidentClient = grant.request.client
        if client.pkce_mandatory and not code.code_challenge:
            raise InvalidGrantError("The authorization request had no PKCE code_challenge.")
        super().validate_code_verifier(grant, result)
