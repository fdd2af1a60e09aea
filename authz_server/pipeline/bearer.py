"""Stage 3 for OAuth2 bearer tokens: a JWT goes to the JWT path, anything else to
introspection; both end in the token's client → application key → Identity."""

from __future__ import annotations

from dataclasses import replace

from portcullis_shared.credentials import credential_hash

from authz_server.index.policy_index import PolicyIndex
from authz_server.pipeline.context import Identity, Route
from authz_server.pipeline.credentials import BearerCredential
from authz_server.pipeline.jwt_token import validate_jwt
from authz_server.pipeline.opaque_token import validate_opaque
from authz_server.pipeline.token_client import token_identity
from authz_server.tokens.jwt_parse import check_bearer_syntax, looks_like_jwt
from authz_server.tokens.services import TokenServices


def authenticate_bearer(
    credential: BearerCredential, route: Route, index: PolicyIndex, now: float, tokens: TokenServices | None = None
) -> Identity:
    token = credential.token
    check_bearer_syntax(token)
    api = route.api
    if looks_like_jwt(token):
        key_manager, claims = validate_jwt(token, api, index, now, tokens)
        identity = token_identity("oauth2_jwt", key_manager, claims, api, index)
    else:
        key_manager, claims = validate_opaque(token, api, index, now, tokens)
        # RFC 7662 names the client `client_id` whatever the key manager's JWT claims are.
        identity = token_identity("oauth2_reference", key_manager, claims, api, index,
                                  extra_client_claims=("client_id",))
    return replace(identity, credential_id="token:" + credential_hash(token))
