"""Stage 3 for opaque (reference) tokens: RFC 7662 introspection at the key manager
that accepts them.

Candidates are the API organization's key managers that accept reference tokens: those
whose token-format pattern matches in full; only when no pattern matches, those without
a pattern (a token is never sent to a key manager whose pattern says it is not its own).
At most `max_introspection_candidates` are asked, in a stable order.
"""

from __future__ import annotations

from typing import Any, Mapping

from authz_server.denials import (
    KeyManagerUnavailable,
    TokenExpired,
    TokenInactive,
    TokenMalformed,
    TokenNotYetValid,
    TokenRevoked,
)
from authz_server.context import CredentialKind, Identity
from authz_server.credentials.token_client import check_key_manager, token_identity
from authz_server.index.apis import ApiPolicy
from authz_server.index.key_managers import KeyManagerPolicy
from authz_server.index.policy_index import PolicyIndex
from authz_server.key_managers.introspection import IntrospectionUnavailable, token_digest
from authz_server.key_managers.services import TokenServices


def _candidates(token: str, api: ApiPolicy, index: PolicyIndex, limit: int) -> list[KeyManagerPolicy]:
    accepting = index.key_managers.accepting_reference_tokens(api.organization_id)
    matched = [km for km in accepting if km.accepts_opaque(token) is True]
    if matched:
        usable = [km for km in matched if km.enabled and api.allows_key_manager(km.name)]
        if not usable:
            check_key_manager(matched[0], api)  # says disabled or not allowed
        return usable[:limit]
    usable = [km for km in accepting if km.accepts_opaque(token) is None and km.enabled and api.allows_key_manager(km.name)]
    if not usable:
        raise TokenMalformed()
    return usable[:limit]


def _check_times(claims: Mapping[str, Any], key_manager: KeyManagerPolicy, now: float) -> None:
    leeway = key_manager.leeway_seconds
    exp = claims.get("exp")
    if isinstance(exp, (int, float)) and not isinstance(exp, bool) and exp <= now - leeway:
        raise TokenExpired()
    nbf = claims.get("nbf")
    if isinstance(nbf, (int, float)) and not isinstance(nbf, bool) and nbf > now + leeway:
        raise TokenNotYetValid()


def authenticate_opaque(
    token: str, api: ApiPolicy, index: PolicyIndex, now: float, tokens: TokenServices | None
) -> Identity:
    """The identity a reference token proves: any bearer token that is not a JWT is one."""
    key_manager, claims = validate_opaque(token, api, index, now, tokens)
    # RFC 7662 names the client `client_id` whatever the key manager's JWT claims are.
    return token_identity(CredentialKind.OAUTH2_REFERENCE, key_manager, claims, api, index, extra_client_claims=("client_id",))


def validate_opaque(
    token: str, api: ApiPolicy, index: PolicyIndex, now: float, tokens: TokenServices | None
) -> tuple[KeyManagerPolicy, Mapping[str, Any]]:
    # A resident reference token revoked at admin_api arrives here by its digest through
    # the sync stream: refused at once, before any (cached) introspection answer.
    if index.revoked_tokens.is_revoked(api.organization_id, token_digest(token), now):
        raise TokenRevoked()
    limit = tokens.max_introspection_candidates if tokens is not None else 1
    candidates = _candidates(token, api, index, limit)
    if tokens is None:
        raise KeyManagerUnavailable("Token validation is not configured on this replica.")
    unavailable = False
    for key_manager in candidates:
        try:
            result = tokens.introspection.introspect(key_manager, token, now)
        except IntrospectionUnavailable:
            unavailable = True
            continue
        if result.active:
            _check_times(result.claims, key_manager, now)
            return key_manager, result.claims
    if unavailable:
        # One key manager could not say: "inactive" might be wrong, so this is not a 401.
        raise KeyManagerUnavailable()
    raise TokenInactive()
