"""RFC 7662 introspection and RFC 7009 revocation (audited like any admin change).

Who may introspect a token: the resident resource servers (authz_server's sync token,
any access token), admins of the token's organization (a bearer admin credential), and
the token's own client. Any other caller is told `{"active": false}`: a client of the
organization learns nothing about another client's tokens (user, subject, scopes)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from admin_api.access.caller import Caller, Credential
from admin_api.audit import log as audit_log
from admin_api.db.oauth_models import OAuthToken
from admin_api.db.types import utcnow
from admin_api.oauth import tokens
from admin_api.transports.oauth2.clients import ResidentClient
from admin_api.transports.oauth2.grants import ANY_AUTH, SECRET_AUTH, StoredToken

log = logging.getLogger(__name__)

# A bearer credential in `Authorization`: authz_server's sync token or an admin's token.
BEARER_AUTH = "bearer_credential"
REVOKE_AUDIT_METHOD = "oauth2/revoke"


# --------------------------------------------------------------------- bearer callers

@dataclass(frozen=True)
class BearerCaller:
    """A caller of introspection by a bearer credential: authz_server's sync token
    (`organization_id` None: a resource server of every organization) or an admin of
    one organization."""

    subject: str
    organization_id: str | None

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == BEARER_AUTH and endpoint == "introspection"

    def may_introspect(self, token: StoredToken) -> bool:
        if self.organization_id is None:
            # A resource server: access tokens only, so a refresh token never passes as one.
            return token.kind == tokens.ACCESS_TOKEN
        return token.organization_id == self.organization_id


# ---------------------------------------------------------------------------- endpoints

class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = [BEARER_AUTH, *SECRET_AUTH]

    def query_token(self, token_string: str, token_type_hint: str | None) -> StoredToken | None:
        with self.server.store.read() as session:
            row = tokens.find(session, token_string)
            return StoredToken.of(row) if row is not None else None

    def check_permission(self, token: StoredToken, client: Any, request: OAuth2Request) -> bool:
        if isinstance(client, BearerCaller):
            return client.may_introspect(token)
        return (isinstance(client, ResidentClient) and client.organization_id == token.organization_id
                and token.consumer_key == client.client_id)

    def introspect_token(self, token: StoredToken) -> dict[str, object]:
        return {
            "active": True,
            "scope": token.scope,
            "client_id": token.consumer_key,
            "username": token.username,
            "sub": token.subject,
            "aud": token.consumer_key,
            "iss": self.server.issuer,
            "exp": token.expires_at,
            "iat": token.issued_at,
            "nbf": token.issued_at,
            "jti": token.id,
            "token_type": "Bearer" if token.kind == tokens.ACCESS_TOKEN else tokens.REFRESH_TOKEN,
            "org": token.organization_id,
        }


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = ANY_AUTH

    def query_token(self, token_string: str, token_type_hint: str | None) -> StoredToken | None:
        with self.server.store.read() as session:
            row = tokens.find(session, token_string)
            return StoredToken.of(row) if row is not None else None

    def revoke_token(self, token: StoredToken, request: OAuth2Request) -> None:
        now = utcnow()
        with self.server.store.write() as writer:
            row = writer.session.get(OAuthToken, token.id)
            if row is not None:
                tokens.revoke(writer, row, now)
                # An admin change like any other: recorded with the revocation (no token value).
                who = Caller(subject=token.consumer_key, organization_id=token.organization_id,
                             credential=Credential.OAUTH_CLIENT)
                audit_log.append(writer.session, audit_log.Entry(who, REVOKE_AUDIT_METHOD, "oauth_token", token.id),
                                 audit_log.SUCCEEDED, target_id=token.id)
        log.info("revoked %s %s of client %s", token.kind, token.id, token.consumer_key)
