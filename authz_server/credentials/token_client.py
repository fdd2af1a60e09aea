"""Stage 3 for tokens, the part shared by JWTs and opaque tokens: the key manager may serve
this API, and the token's client (consumer key) is an application key of the API's
organization at that key manager, which gives the application and the environment."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

from authz_server.context import CredentialKind, Identity
from authz_server.credentials.environment import require_environment
from authz_server.denials import KeyManagerDisabled, KeyManagerNotAllowed, TokenClaimsInvalid, TokenClientUnknown
from authz_server.index.apis import ApiPolicy
from authz_server.index.key_managers import KeyManagerPolicy, KeyManagerType
from authz_server.index.policy_index import PolicyIndex


def check_key_manager(key_manager: KeyManagerPolicy, api: ApiPolicy) -> None:
    if not key_manager.enabled:
        raise KeyManagerDisabled(f"Key manager {key_manager.name!r} is disabled.")
    if not api.allows_key_manager(key_manager.name):
        raise KeyManagerNotAllowed(f"Tokens of key manager {key_manager.name!r} are not accepted by this API.")


def _consumer_key(claims: Mapping[str, Any], names: tuple[str, ...]) -> str:
    for name in names:
        value = claims.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            raise TokenClaimsInvalid(f"The token's {name} claim is not a client id.")
        return value
    raise TokenClaimsInvalid(f"The token names no client (looked for: {', '.join(names)}).")


def token_scopes(claims: Mapping[str, Any], names: tuple[str, ...]) -> frozenset[str]:
    """The first scopes claim present: a space-separated string or an array of strings."""
    for name in names:
        value = claims.get(name)
        if value is None:
            continue
        if isinstance(value, str):
            return frozenset(value.split())
        if isinstance(value, list) and all(isinstance(scope, str) for scope in value):
            return frozenset(scope for scope in value if scope)
        raise TokenClaimsInvalid(f"The token's {name} claim is neither a string nor an array of strings.")
    return frozenset()


def token_identity(
    kind: CredentialKind,
    key_manager: KeyManagerPolicy,
    claims: Mapping[str, Any],
    api: ApiPolicy,
    index: PolicyIndex,
    *,
    extra_client_claims: tuple[str, ...] = (),
    credential_id: str = "",
) -> Identity:
    consumer_key = _consumer_key(claims, tuple(dict.fromkeys(key_manager.consumer_key_claims + extra_client_claims)))
    organization = claims.get("org")
    if key_manager.type is KeyManagerType.RESIDENT and organization is not None and organization != api.organization_id:
        # Every organization's resident key manager has the same issuer; the org claim
        # says which one issued the token.
        raise TokenClientUnknown("The token was issued for another organization.")
    application_key = index.application_keys.for_client(api.organization_id, key_manager.id, consumer_key)
    if application_key is None:
        raise TokenClientUnknown()
    environment = require_environment(api, application_key.environment, what="application key")
    subject = claims.get("sub")
    return Identity(
        kind=kind,
        environment=environment,
        application_id=application_key.application_id,
        key_manager_id=key_manager.id,
        consumer_key=consumer_key,
        scopes=token_scopes(claims, key_manager.scopes_claims),
        subject=subject if isinstance(subject, str) else "",
        claims=MappingProxyType(dict(claims)),
        credential_id=credential_id,
    )
