"""authlib's AuthorizationServer wired to our storage: the grants, PKCE, introspection
and revocation of the resident key manager.

Framework glue (authlib's integration contract): `create_oauth2_request` receives an
already-parsed `FormRequest` (see routes.py, which reads the body asynchronously and then
runs this synchronous server in a worker thread), `handle_response` returns a plain
`OAuthResponse` that routes.py turns into a Starlette response.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    OAuth2Payload,
    OAuth2Request,
    grants,
)
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from admin_api.access import auth
from admin_api.audit import log as audit_log
from admin_api.access.caller import Caller, Credential, Role
from admin_api.db.oauth_models import AuthorizationCode, OAuthToken
from admin_api.db.types import utcnow
from admin_api.errors import Unauthenticated
from admin_api.oauth import tokens
from admin_api.transports.oauth2.clients import (
    AUTHORIZATION_CODE,
    CLIENT_CREDENTIALS,
    PUBLIC_METHOD,
    REFRESH_TOKEN,
    ResidentClient,
    find_client,
)
from admin_api.oauth.signing_keys import SigningKeys
from admin_api.services import users
from admin_api.store.unit_of_work import Store
from portcullis_shared.credentials import credential_hash

log = logging.getLogger(__name__)

AUTHORIZATION_CODE_VALIDITY = timedelta(minutes=5)
SECRET_AUTH = ["client_secret_basic", "client_secret_post"]
ANY_AUTH = SECRET_AUTH + [PUBLIC_METHOD]
SYNC_TOKEN_AUTH = "sync_token"
REVOKE_AUDIT_METHOD = "oauth2/revoke"


# ---------------------------------------------------------------------------- requests

class FormPayload(OAuth2Payload):
    def __init__(self, data: dict[str, str], datalist: dict[str, list[str]]) -> None:
        self._data = data
        self._datalist = defaultdict(list, datalist)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list]:
        return self._datalist


class FormRequest(OAuth2Request):
    """An HTTP request already read: OAuth parameters from the form body (token,
    introspection, revocation) or from the query (authorization)."""

    def __init__(self, method: str, uri: str, headers: dict[str, str], params: list[tuple[str, str]],
                 form: dict[str, str] | None = None) -> None:
        super().__init__(method, uri, headers=headers)
        datalist: dict[str, list[str]] = {}
        for key, value in params:
            datalist.setdefault(key, []).append(value)
        self._params = {key: values[0] for key, values in datalist.items()}
        self._form = self._params if form is None else form
        self.payload = FormPayload(self._params, datalist)

    @property
    def args(self) -> dict[str, str]:
        return self._params

    @property
    def form(self) -> dict[str, str]:
        return self._form


@dataclass(frozen=True)
class OAuthResponse:
    status: int
    body: Any
    headers: list[tuple[str, str]] = field(default_factory=list)


# ------------------------------------------------------------------------------ owners

@dataclass(frozen=True)
class Owner:
    """The resource owner a token is issued for, and what the grant consumes."""

    subject: str
    username: str
    grant_id: str | None = None
    consumes_refresh_token_id: str | None = None
    consumes_code_hash: str | None = None


@dataclass(frozen=True)
class SyncCaller:
    """authz_server, authenticated by its sync token: may introspect any access token."""

    subject: str

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == SYNC_TOKEN_AUTH and endpoint == "introspection"


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
        identity = users.authenticate_user(client.store, client.organization_id, username, password)
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
                created_at=now, expires_at=now + AUTHORIZATION_CODE_VALIDITY))

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
        with client.store.read() as session:
            row = tokens.find(session, refresh_token)
            if row is None or row.kind != tokens.REFRESH_TOKEN or not tokens.is_live(row, utcnow()):
                return None
            return StoredToken.of(row)

    def authenticate_user(self, refresh_token: StoredToken) -> Owner:
        return Owner(subject=refresh_token.subject, username=refresh_token.username,
                     grant_id=refresh_token.grant_id, consumes_refresh_token_id=refresh_token.id)

    def revoke_old_credential(self, refresh_token: StoredToken) -> None:
        pass  # used up in the issuing transaction, see tokens.issue


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


# ---------------------------------------------------------------------------- endpoints

class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = [SYNC_TOKEN_AUTH, *SECRET_AUTH]

    def query_token(self, token_string: str, token_type_hint: str | None) -> StoredToken | None:
        with self.server.store.read() as session:
            row = tokens.find(session, token_string)
            return StoredToken.of(row) if row is not None else None

    def check_permission(self, token: StoredToken, client: Any, request: OAuth2Request) -> bool:
        if isinstance(client, SyncCaller):
            # A resource server: access tokens only, so a refresh token never passes as one.
            return token.kind == tokens.ACCESS_TOKEN
        if not isinstance(client, ResidentClient) or client.organization_id != token.organization_id:
            return False
        return token.kind == tokens.ACCESS_TOKEN or token.consumer_key == client.client_id

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


# ------------------------------------------------------------------------------- server

class ResidentAuthorizationServer(AuthorizationServer):
    def __init__(self, store: Store, keys: SigningKeys, issuer: str) -> None:
        super().__init__()
        self.store = store
        self.keys = keys
        self.issuer = issuer
        self.register_token_generator("default", self._generate_token)
        self.register_grant(ClientCredentialsGrant)
        self.register_grant(PasswordGrant)
        self.register_grant(AuthorizationCodeGrant, [Pkce(required=True)])
        self.register_grant(RefreshTokenGrant)
        self.register_endpoint(Introspection)
        self.register_endpoint(Revocation)
        self.register_client_auth_method(SYNC_TOKEN_AUTH, self._authenticate_sync_token)

    # authlib's framework contract ------------------------------------------------------

    def query_client(self, client_id: str) -> ResidentClient | None:
        return find_client(self.store, client_id)

    def save_token(self, token: dict[str, object], request: OAuth2Request) -> None:
        pass  # recorded by the generator, in the transaction that signs it

    def create_oauth2_request(self, request: FormRequest) -> FormRequest:
        return request

    def create_json_request(self, request: object) -> object:
        raise NotImplementedError("the resident key manager takes no JSON requests")

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> OAuthResponse:
        headers = list(headers)
        if isinstance(body, dict) and body.get("error") == InvalidClientError.error:
            # RFC 6749 §5.2: failed client authentication is a 401 with a challenge,
            # whichever method the client tried.
            status = 401
            headers = [(name, value) for name, value in headers if name.lower() != "www-authenticate"]
            headers.append(("WWW-Authenticate", 'Basic realm="portcullis", error="invalid_client"'))
        return OAuthResponse(status, body, headers)

    def send_signal(self, name: str, *args: object, **kwargs: object) -> None:
        pass  # no signal system: logging happens where the work is done

    # token generation --------------------------------------------------------------------

    def _generate_token(self, grant_type: str, client: ResidentClient, user: Owner | None = None,
                        scope: str | None = None, expires_in: int | None = None,
                        include_refresh_token: bool = True) -> dict[str, object]:
        if user is None:
            # client_credentials: the application's owner is the one entitled to scopes.
            owner = Owner(subject=client.client_id, username=client.info.application_owner)
        else:
            owner = user
        roles = users.roles_of(self.store, client.organization_id, owner.username)
        requested = scope_to_list(scope) or []
        granted = users.entitled_scopes(self.store, client.organization_id, roles, requested)
        refresh = (include_refresh_token and grant_type != CLIENT_CREDENTIALS
                   and client.check_grant_type(REFRESH_TOKEN))
        spec = tokens.TokenSpec(
            organization_id=client.organization_id, key_manager_id=client.info.key_manager_id,
            application_key_id=client.info.application_key_id, consumer_key=client.client_id,
            grant_type=grant_type, subject=owner.subject, username=owner.username,
            scope=" ".join(granted), reference=client.reference_tokens,
            access_validity=expires_in or client.access_validity,
            refresh_validity=client.refresh_validity if refresh else None,
            grant_id=owner.grant_id, consumes_refresh_token_id=owner.consumes_refresh_token_id,
            consumes_code_hash=owner.consumes_code_hash)
        try:
            with self.store.write() as writer:
                token = tokens.issue(writer, self.keys, self.issuer, spec, utcnow())
        except tokens.GrantConsumed as exc:
            raise InvalidGrantError(str(exc)) from None
        log.info("issued %s token to client %s (grant %s, scope %r)",
                 "reference" if spec.reference else "JWT", client.client_id, grant_type, spec.scope)
        return token

    def _authenticate_sync_token(self, query_client: object, request: OAuth2Request) -> SyncCaller | None:
        token = auth.bearer_token(request.headers.get("Authorization"))
        if token is None:
            return None
        try:
            caller = auth.caller_for(self.store, token, role=Role.SYNC)
        except Unauthenticated:
            return None
        return SyncCaller(caller.subject)


def authorization_grant_types() -> list[str]:
    return [CLIENT_CREDENTIALS, "password", REFRESH_TOKEN, AUTHORIZATION_CODE]
