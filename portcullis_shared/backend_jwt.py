"""The backend JWT's contract, shared by admin_api (validates the per-API configuration)
and authz_server (signs): header default, validity bounds and the claim names Portcullis
sets itself, which a mapped or static claim may never replace."""

from __future__ import annotations

DEFAULT_HEADER = "x-jwt-assertion"
DEFAULT_VALIDITY_SECONDS = 300
MIN_VALIDITY_SECONDS = 10
MAX_VALIDITY_SECONDS = 3600
DEFAULT_ALGORITHM = "ES256"
ALGORITHMS = ("ES256", "RS256", "EdDSA")

# RFC 7519 registered claims (set or reserved) and Portcullis's own claims.
REGISTERED_CLAIMS = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti"})
PORTCULLIS_CLAIMS = frozenset({
    "org", "application", "subscriber", "api", "key_type", "consumer_key", "scopes", "credential", "over_quota",
})
RESERVED_CLAIMS = REGISTERED_CLAIMS | PORTCULLIS_CLAIMS
