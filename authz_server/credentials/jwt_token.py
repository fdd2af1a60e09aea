"""Stage 3 for JWT access tokens (RFC 7519 / RFC 9068), following RFC 8725.

The unverified `iss` only selects a key manager of the API's organization; everything
else is believed only after PyJWT verified the signature with that key manager's key for
exactly the one algorithm the header names, once that algorithm passed the key manager's
allow-list (never `none`, never HMAC). Headers that point at keys (`jku`, `x5u`, `jwk`,
`x5c`) are never read: keys come from the key manager's configured JWKS or certificate.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

import jwt
from jwt.exceptions import InvalidJTIError, InvalidSubjectError

from authz_server.denials import (
    KeyManagerUnavailable,
    TokenAlgorithmNotAllowed,
    TokenAudienceInvalid,
    TokenClaimsInvalid,
    TokenExpired,
    TokenIssuerUnknown,
    TokenKeyUnknown,
    TokenMalformed,
    TokenNotYetValid,
    TokenRevoked,
    TokenSignatureInvalid,
)
from authz_server.context import CredentialKind, Identity
from authz_server.credentials.jwt_parse import looks_like_jwt, parse_unverified
from authz_server.credentials.token_client import check_key_manager, token_identity
from authz_server.index.apis import ApiPolicy
from authz_server.index.key_managers import KeyManagerPolicy
from authz_server.index.policy_index import PolicyIndex
from authz_server.key_managers.jwks import VerificationKey
from authz_server.key_managers.jwks_cache import JwksUnavailable
from authz_server.key_managers.services import TokenServices
from authz_server.key_managers.verified import VerifiedJwt, token_digest
from portcullis_shared.credentials import credential_hash

# RFC 9068 §2.1 "at+jwt", plain "JWT", with or without the "application/" prefix (RFC 7515 §4.1.9).
_ACCEPTED_TYPES = frozenset({"jwt", "at+jwt", "application/jwt", "application/at+jwt"})
_TIME_CLAIMS = ("exp", "nbf", "iat")


def _check_header(header: Mapping[str, Any]) -> tuple[str, str | None]:
    alg = header.get("alg")
    if not isinstance(alg, str) or not alg:
        raise TokenMalformed("The token's header has no algorithm (alg).")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise TokenMalformed("The token's key id (kid) is not a string.")
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.lower() not in _ACCEPTED_TYPES):
        raise TokenMalformed("The token's type (typ) is not JWT or at+jwt.")
    if "crit" in header:
        # RFC 7515 §4.1.11: a critical extension we do not implement must be refused.
        raise TokenMalformed("The token has critical header parameters (crit) that are not supported.")
    return alg, kid


def _check_claim_types(claims: Mapping[str, Any]) -> None:
    for name in _TIME_CLAIMS:
        value = claims.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise TokenClaimsInvalid(f"The token's {name} claim is not a number.")


def _verify(token: str, key: VerificationKey, alg: str, key_manager: KeyManagerPolicy) -> dict[str, Any]:
    """PyJWT with the one algorithm, the issuer, the audience when configured and exp required.

    Each PyJWT error class gets its own reason code (subclasses before their bases)."""
    try:
        return jwt.decode(
            token,
            key=key.key,
            algorithms=[alg],
            issuer=key_manager.issuer,
            audience=key_manager.audience or None,
            leeway=key_manager.leeway_seconds,
            options={"require": ["exp", "iss"], "verify_aud": bool(key_manager.audience)},
        )
    except jwt.ExpiredSignatureError:
        raise TokenExpired() from None
    except jwt.ImmatureSignatureError:
        raise TokenNotYetValid() from None
    except jwt.InvalidAudienceError:
        raise TokenAudienceInvalid(f"The token is not meant for audience {key_manager.audience!r}.") from None
    except jwt.InvalidSignatureError:
        raise TokenSignatureInvalid() from None
    except jwt.MissingRequiredClaimError as exc:
        if exc.claim == "aud":
            raise TokenAudienceInvalid(f"The token has no audience; {key_manager.audience!r} is required.") from None
        raise TokenClaimsInvalid(f"The token has no {exc.claim} claim.") from None
    except jwt.InvalidIssuerError:
        raise TokenClaimsInvalid("The token's issuer (iss) is not its key manager's.") from None
    except jwt.InvalidIssuedAtError:
        raise TokenClaimsInvalid("The token's iat claim is not a number.") from None
    except (InvalidSubjectError, InvalidJTIError):
        raise TokenClaimsInvalid("The token's sub or jti claim is not a string.") from None
    except jwt.InvalidAlgorithmError:
        raise TokenAlgorithmNotAllowed() from None
    except jwt.InvalidKeyError:
        raise TokenSignatureInvalid("The token cannot be verified with its key manager's key.") from None
    except jwt.DecodeError:
        raise TokenMalformed() from None
    except jwt.InvalidTokenError:
        raise TokenMalformed() from None


def _still_valid(verified: VerifiedJwt, api: ApiPolicy, index: PolicyIndex, now: float,
                 tokens: TokenServices) -> bool:
    """A cached verification still holds: same key manager configuration, enabled and
    allowed here, its key still published, not expired, not revoked (denials raise).
    False: something changed, verify the token again from scratch."""
    key_manager = index.key_managers.for_issuer(api.organization_id, verified.claims["iss"])
    if key_manager is not verified.key_manager:
        return False
    check_key_manager(key_manager, api)
    try:
        key = tokens.jwks.key_for(key_manager.key_source, verified.kid)
    except JwksUnavailable:
        return False
    if key != verified.key:
        return False
    if now > verified.claims["exp"] + key_manager.leeway_seconds:
        raise TokenExpired()
    jti = verified.claims.get("jti")
    if jti and index.revoked_tokens.is_revoked(api.organization_id, jti, now):
        raise TokenRevoked()
    return True


class _CachedIdentities:
    """The identity of a token whose verification came from the verified-token cache,
    remembered per index. `token_identity` is a function of the key manager, the claims,
    the API and the index (the application key names the application and environment),
    and the credential id of the token, which the cached claims object stands for (one
    cache entry per token digest): within one index the same cached claims object gives
    the same identity. Every check that can change while a token lives (_still_valid: key
    manager, key, expiry, revocation) has run before this is asked, and the client,
    subscription and scope stages run after it; a new index starts an empty table. Bounded."""

    MAX_ENTRIES = 4096

    def __init__(self) -> None:
        self.generation: tuple[PolicyIndex | None, dict[tuple[int, str], tuple[object, object, Identity]]] = (None, {})

    def identity(self, key_manager: KeyManagerPolicy, claims: Mapping[str, Any], api: ApiPolicy,
                 index: PolicyIndex, token: str) -> Identity:
        seen, table = self.generation
        if seen is not index:
            table = {}
            self.generation = (index, table)
        key = (id(claims), api.id)   # the entry holds `claims` itself, so its id is not reused meanwhile
        found = table.get(key)
        if found is not None and found[0] is claims and found[1] is key_manager:
            return found[2]
        identity = _identity(token, key_manager, claims, api, index)
        if len(table) >= self.MAX_ENTRIES:
            table.clear()
        table[key] = (claims, key_manager, identity)
        return identity


_IDENTITIES = _CachedIdentities()


def authenticate_jwt(
    token: str, api: ApiPolicy, index: PolicyIndex, now: float, tokens: TokenServices | None
) -> Identity | None:
    """The identity a JWT access token proves; None when the token is not a JWT (not mine)."""
    if not looks_like_jwt(token):
        return None
    key_manager, claims, cached = _validated(token, api, index, now, tokens)
    if cached:
        return _IDENTITIES.identity(key_manager, claims, api, index, token)
    return _identity(token, key_manager, claims, api, index)


def _identity(token: str, key_manager: KeyManagerPolicy, claims: Mapping[str, Any], api: ApiPolicy,
              index: PolicyIndex) -> Identity:
    return token_identity(CredentialKind.OAUTH2_JWT, key_manager, claims, api, index,
                          credential_id="token:" + credential_hash(token))


def validate_jwt(
    token: str, api: ApiPolicy, index: PolicyIndex, now: float, tokens: TokenServices | None
) -> tuple[KeyManagerPolicy, Mapping[str, Any]]:
    key_manager, claims, _ = _validated(token, api, index, now, tokens)
    return key_manager, claims


def _validated(
    token: str, api: ApiPolicy, index: PolicyIndex, now: float, tokens: TokenServices | None
) -> tuple[KeyManagerPolicy, Mapping[str, Any], bool]:
    """validate_jwt, and whether the verification came from the verified-token cache."""
    cache = tokens.verified if tokens is not None else None
    digest = b""
    if cache is not None:
        digest = token_digest(token)
        verified = cache.get(digest, now)
        if verified is not None and tokens is not None and _still_valid(verified, api, index, now, tokens):
            return verified.key_manager, verified.claims, True
    key_manager, claims, key, kid, alg = _validate_fully(token, api, index, now, tokens)
    if cache is not None:
        cache.put(digest, VerifiedJwt(key_manager, key, kid, alg, MappingProxyType(dict(claims))), now)
    return key_manager, claims, False


def _validate_fully(
    token: str, api: ApiPolicy, index: PolicyIndex, now: float, tokens: TokenServices | None
) -> tuple[KeyManagerPolicy, dict[str, Any], VerificationKey, str | None, str]:
    unverified = parse_unverified(token)
    alg, kid = _check_header(unverified.header)
    issuer = unverified.claims.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise TokenClaimsInvalid("The token has no issuer (iss).")
    key_manager = index.key_managers.for_issuer(api.organization_id, issuer)
    if key_manager is None:
        raise TokenIssuerUnknown()
    check_key_manager(key_manager, api)
    if not key_manager.accepts_jwt:
        raise TokenMalformed(f"Key manager {key_manager.name!r} does not accept JWT access tokens.")
    if alg not in key_manager.allowed_algorithms:
        raise TokenAlgorithmNotAllowed(f"Algorithm {alg[:20]!r} is not allowed for key manager {key_manager.name!r}.")
    _check_claim_types(unverified.claims)
    if tokens is None:
        raise KeyManagerUnavailable("Token validation is not configured on this replica.")
    try:
        key = tokens.jwks.key_for(key_manager.key_source, kid)
    except JwksUnavailable:
        raise KeyManagerUnavailable(f"The keys of key manager {key_manager.name!r} could not be fetched.") from None
    if key is None:
        raise TokenKeyUnknown()
    if not key.can_verify(alg):
        raise TokenSignatureInvalid(f"The token's key cannot verify {alg}.")
    claims = _verify(token, key, alg, key_manager)
    jti = claims.get("jti")
    if jti and index.revoked_tokens.is_revoked(api.organization_id, jti, now):
        raise TokenRevoked()
    return key_manager, claims, key, kid, alg
