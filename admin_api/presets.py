"""Key manager types and what each implies: claim defaults, accepted algorithms, the
resident key manager's fixed token handling and its endpoints under the public URL.

Pure data and functions (no database, no I/O): both the admin answers and the sync
records are rendered from them.
"""

from __future__ import annotations

from portcullis.admin.v1 import key_managers_pb2

from portcullis_shared.clock_leeway import DEFAULT_LEEWAY_SECONDS, MAX_LEEWAY_SECONDS  # noqa: F401 (re-exported)

KmType = key_managers_pb2.KeyManager.Type

RESIDENT_NAME = "Resident Key Manager"
RESIDENT_TOKEN_FORMAT_PATTERN = r"^pct_[A-Za-z0-9_-]{43}$"

EXTERNAL_TYPES = (KmType.OIDC, KmType.KEYCLOAK, KmType.OKTA, KmType.WSO2_IS)

# The claims tried, in order, for the consumer key when a key manager names none.
CONSUMER_KEY_CLAIMS: dict[int, tuple[str, ...]] = {
    KmType.RESIDENT: ("azp", "client_id"),
    KmType.OIDC: ("azp", "client_id"),
    KmType.KEYCLOAK: ("azp",),
    KmType.OKTA: ("cid",),
    KmType.WSO2_IS: ("azp",),
}
SCOPES_CLAIMS: tuple[str, ...] = ("scope", "scp")

DEFAULT_ALGORITHMS: tuple[str, ...] = ("RS256", "PS256", "ES256")
# Asymmetric JWS algorithms only: "none" and HMAC (HS*) are never accepted, since a
# key manager's public key must never double as an HMAC secret.
KNOWN_ALGORITHMS: frozenset[str] = frozenset({
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
})

# Where the resident OAuth2 server answers, relative to the public URL.
RESIDENT_PATHS = {
    "discovery_url": "/.well-known/openid-configuration",
    "jwks_uri": "/oauth2/jwks",
    "token_endpoint": "/oauth2/token",
    "authorization_endpoint": "/oauth2/authorize",
    "revocation_endpoint": "/oauth2/revoke",
    "introspection_endpoint": "/oauth2/introspect",
}


def consumer_key_claims(km_type: int, configured: str) -> list[str]:
    return [configured] if configured else list(CONSUMER_KEY_CLAIMS.get(km_type, ("azp", "client_id")))


def scopes_claims(configured: str) -> list[str]:
    return [configured] if configured else list(SCOPES_CLAIMS)


def resident_endpoints(public_url: str) -> dict[str, str]:
    """The resident key manager's issuer and endpoints for this deployment."""
    base = public_url.rstrip("/")
    return {"issuer": base, **{field: base + path for field, path in RESIDENT_PATHS.items()}}
