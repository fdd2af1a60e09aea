"""authlib's AuthorizationServer wired to our storage: the grants (`grants`), the
introspection and revocation endpoints (`endpoints`) and the token generator of the
resident key manager.

Framework glue (authlib's integration contract): `create_oauth2_request` receives an
already-parsed `FormRequest` (see routes.py, which reads the body asynchronously and then
runs this synchronous server in a worker thread), `handle_response` returns a plain
`OAuthResponse` that routes.py turns into a Starlette response.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import InvalidClientError, InvalidGrantError, OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6749.util import scope_to_list

from admin_api.access import auth
from admin_api.access.caller import Role
from admin_api.db.types import utcnow
from admin_api.errors import Unauthenticated
from admin_api.oauth import tokens
from admin_api.oauth.signing_keys import SigningKeys
from admin_api.services import users
from admin_api.store.unit_of_work import Store
from admin_api.transports.oauth2.clients import CLIENT_CREDENTIALS, REFRESH_TOKEN, ResidentClient, find_client
from admin_api.transports.oauth2.endpoints import BEARER_AUTH, BearerCaller, Introspection, Revocation
from admin_api.transports.oauth2.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    Owner,
    PasswordGrant,
    Pkce,
    RefreshTokenGrant,
    revoke_reused_family,
)
from portcullis_shared.scopes import ADMIN_SCOPE

log = logging.getLogger(__name__)


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


# ------------------------------------------------------------------------------- server

class ResidentAuthorizationServer(AuthorizationServer):
    def __init__(self, store: Store, keys: SigningKeys, issuer: str) -> None:
        super().__init__()
        self.store = store
        self.keys = keys
        self.issuer = issuer
        # Built-in first-party clients (the developer portal), by client_id: not stored,
        # answered before the application keys.
        self.first_party: dict[str, ResidentClient] = {}
        # And those found by their id when asked for (the portal's clients of organizations).
        self.first_party_resolver: Callable[[str], ResidentClient | None] | None = None
        self.register_token_generator("default", self._generate_token)
        self.register_grant(ClientCredentialsGrant)
        self.register_grant(PasswordGrant)
        self.register_grant(AuthorizationCodeGrant, [Pkce(required=True)])
        self.register_grant(RefreshTokenGrant)
        self.register_endpoint(Introspection)
        self.register_endpoint(Revocation)
        self.register_client_auth_method(BEARER_AUTH, self._authenticate_bearer)

    # authlib's framework contract ------------------------------------------------------

    def query_client(self, client_id: str) -> ResidentClient | None:
        client = self.first_party.get(client_id)
        if client is None and self.first_party_resolver is not None:
            client = self.first_party_resolver(client_id)
        return client or find_client(self.store, client_id)

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
        if ADMIN_SCOPE in requested and client.first_party:
            # The admin API's audience: first-party clients only (portcullis_shared.scopes).
            granted.append(ADMIN_SCOPE)
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
            if spec.consumes_refresh_token_id is not None and spec.grant_id is not None:
                # Two uses of one refresh token at once: the other one won, this is reuse.
                revoke_reused_family(client, spec.grant_id, spec.consumes_refresh_token_id)
            raise InvalidGrantError(str(exc)) from None
        log.info("issued %s token to client %s (grant %s, scope %r)",
                 "reference" if spec.reference else "JWT", client.client_id, grant_type, spec.scope)
        return token

    def _authenticate_bearer(self, query_client: object, request: OAuth2Request) -> BearerCaller | None:
        """authz_server's sync token, or the credential of an admin; None otherwise (then
        the endpoint tries client authentication, and answers invalid_client)."""
        token = auth.bearer_token(request.headers.get("Authorization"))
        if token is None:
            return None
        try:
            return BearerCaller(auth.caller_for(self.store, token, role=Role.SYNC).subject, None)
        except Unauthenticated:
            pass
        try:
            caller = auth.admin_caller(self.store, token)
        except Unauthenticated:
            return None
        return BearerCaller(caller.subject, caller.organization_id) if caller.is_admin else None
