"""Stage 3 for OAuth2 bearer tokens: the first token authenticator that recognises the
token decides (a JWT goes to the JWT path, anything else to introspection); both end in
the token's client → application key → Identity."""

from __future__ import annotations

from typing import Callable

from portcullis_shared.credentials import credential_hash

from authz_server.context import Identity, Route
from authz_server.credentials.extract import BearerCredential
from authz_server.credentials.jwt_parse import check_bearer_syntax
from authz_server.credentials.jwt_token import authenticate_jwt
from authz_server.credentials.opaque_token import authenticate_opaque
from authz_server.denials import CredentialUnsupported
from authz_server.index.apis import ApiPolicy
from authz_server.index.policy_index import PolicyIndex
from authz_server.key_managers.services import TokenServices

# (token, api, index, now, tokens) -> the identity, None for "not my kind of token", or a denial.
TokenAuthenticator = Callable[[str, ApiPolicy, PolicyIndex, float, TokenServices | None], Identity | None]

# In order; the last one takes every token the others left, so one always answers.
TOKEN_AUTHENTICATORS: tuple[TokenAuthenticator, ...] = (
    authenticate_jwt,
    authenticate_opaque,
)


def authenticate_bearer(
    credential: BearerCredential, route: Route, index: PolicyIndex, now: float, tokens: TokenServices | None = None
) -> Identity:
    token = credential.token
    check_bearer_syntax(token)
    for authenticator in TOKEN_AUTHENTICATORS:
        identity = authenticator(token, route.api, index, now, tokens)
        if identity is not None:
            # An authenticator may name the credential itself (JWTs do: their identity may be
            # a remembered one); otherwise it is named here.
            if identity.credential_id:
                return identity
            return identity._replace(credential_id="token:" + credential_hash(token))
    raise CredentialUnsupported("No token authenticator recognises this bearer token.")
