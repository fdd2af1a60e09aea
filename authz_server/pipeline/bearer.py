"""Stage 3 for OAuth2 bearer tokens: recognised, not validated until the OAuth2 issue."""

from __future__ import annotations

from authz_server.denials import CredentialUnsupported
from authz_server.index.policy_index import PolicyIndex
from authz_server.pipeline.context import Identity, Route
from authz_server.pipeline.credentials import BearerCredential


def authenticate_bearer(credential: BearerCredential, route: Route, index: PolicyIndex, now: float) -> Identity:
    raise CredentialUnsupported("OAuth2 bearer tokens are not validated yet; use an API key.")
