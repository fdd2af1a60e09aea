"""The claims of a backend JWT (the README's table is the contract).

Registered: iss, iat, exp, jti, sub. Portcullis's own: org, application {id, name,
owner, tier}, subscriber, api {id, name, version, context}, key_type, consumer_key,
scopes, credential. Then the API's mapped claims (from the caller's token) and static
claims, which never replace any of the above.
"""

from __future__ import annotations

import secrets
from typing import Any, Mapping

from authz_server.context import CredentialKind, Identity
from authz_server.index.apis import ApiPolicy, BackendJwtPolicy
from authz_server.index.applications import ApplicationPolicy
from portcullis_shared.backend_jwt import RESERVED_CLAIMS

ANONYMOUS = "anonymous"
# The backend JWT says "oauth2" for both kinds of token.
CREDENTIAL_KINDS = {CredentialKind.API_KEY: "api_key", CredentialKind.OAUTH2_JWT: "oauth2",
                    CredentialKind.OAUTH2_REFERENCE: "oauth2"}


def _subject(identity: Identity | None, application: ApplicationPolicy | None) -> str:
    """The end user: the token's subject, unless the token stands for its client
    (client_credentials: `sub` is the consumer key) or the credential is an API key; then
    the application's owner."""
    if identity is None:
        return ANONYMOUS
    if identity.is_token and identity.subject and identity.subject != identity.consumer_key:
        return identity.subject
    if application is not None:
        return application.owner
    return identity.subject or identity.consumer_key or identity.credential_id


def backend_claims(
    *,
    issuer: str,
    now: int,
    config: BackendJwtPolicy,
    api: ApiPolicy,
    environment: str,
    identity: Identity | None,
    application: ApplicationPolicy | None,
    over_quota: tuple[str, ...] = (),
) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": issuer,
        "iat": now,
        "exp": now + config.validity_seconds,
        "jti": secrets.token_urlsafe(16),
        "sub": _subject(identity, application),
        "org": api.organization_id,
        "api": {"id": api.id, "name": api.name, "version": api.version, "context": api.context},
        "key_type": environment.upper(),
        "credential": CREDENTIAL_KINDS[identity.kind] if identity is not None else "none",
        "scopes": sorted(identity.scopes) if identity is not None else [],
    }
    if application is not None:
        claims["application"] = {"id": application.id, "name": application.name, "owner": application.owner,
                                 "tier": application.throttling_tier}
        claims["subscriber"] = application.owner
    if identity is not None and identity.consumer_key:
        claims["consumer_key"] = identity.consumer_key
    if over_quota:
        claims["over_quota"] = list(over_quota)
    _add_extra(claims, config, identity.claims if identity is not None else {})
    return claims


def _add_extra(claims: dict[str, Any], config: BackendJwtPolicy, token_claims: Mapping[str, Any]) -> None:
    for source, target in config.claim_mappings:
        if target not in RESERVED_CLAIMS and source in token_claims:
            claims[target] = token_claims[source]
    for name, value in config.static_claims:
        if name not in RESERVED_CLAIMS:
            claims[name] = value
