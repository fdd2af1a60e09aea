"""Stage 3 for API keys: look the key up by hash and check it may call this API."""

from __future__ import annotations

from authz_server.denials import (
    ApiKeyExpired,
    ApiKeyInvalid,
    ApiKeyRevoked,
    ApiKeyWrongApi,
)
from authz_server.context import CredentialKind, Identity, Route
from authz_server.credentials.environment import require_environment
from authz_server.credentials.extract import ApiKeyCredential
from authz_server.index.policy_index import PolicyIndex
from authz_server.key_managers.services import TokenServices
from portcullis_shared.credentials import credential_digest


def authenticate_api_key(
    credential: ApiKeyCredential, route: Route, index: PolicyIndex, now: float, tokens: TokenServices | None = None
) -> Identity:
    # A dict lookup by SHA-256 leaks nothing useful through timing: an attacker would
    # have to find preimages of the hashes it probes.
    key = index.api_keys.for_digest(credential_digest(credential.value))
    if key is None:
        raise ApiKeyInvalid()
    key_id = key.id   # made from the compact id: once
    if key.revoked:
        raise ApiKeyRevoked(api_key_id=key_id)
    if key.expired(now):
        raise ApiKeyExpired(api_key_id=key_id)
    api = route.api
    if key.api_id != api.id or key.organization_id != api.organization_id:
        raise ApiKeyWrongApi(api_key_id=key_id)
    environment = require_environment(api, key.environment, what="API key", api_key_id=key_id)
    return Identity(kind=CredentialKind.API_KEY, environment=environment, application_id=key.application_id, api_key=key,
                    credential_id="api_key:" + key_id)
