"""The resident key manager's authorization server metadata (RFC 8414), served at
`/.well-known/openid-configuration` (and `/.well-known/oauth-authorization-server`)."""

from __future__ import annotations

from admin_api.oauth.signing_keys import SUPPORTED_ALGORITHMS

TOKEN_PATH = "/oauth2/token"
AUTHORIZE_PATH = "/oauth2/authorize"
INTROSPECT_PATH = "/oauth2/introspect"
REVOKE_PATH = "/oauth2/revoke"
JWKS_PATH = "/oauth2/jwks"
OPENID_CONFIGURATION_PATH = "/.well-known/openid-configuration"
OAUTH_METADATA_PATH = "/.well-known/oauth-authorization-server"

GRANT_TYPES = ["client_credentials", "password", "refresh_token", "authorization_code"]
CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]


def metadata(issuer: str) -> dict[str, object]:
    """Every URL is the issuer (the deployment's public URL) plus a fixed path."""
    return {
        "issuer": issuer,
        "authorization_endpoint": issuer + AUTHORIZE_PATH,
        "token_endpoint": issuer + TOKEN_PATH,
        "jwks_uri": issuer + JWKS_PATH,
        "introspection_endpoint": issuer + INTROSPECT_PATH,
        "revocation_endpoint": issuer + REVOKE_PATH,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GRANT_TYPES,
        "code_challenge_methods_supported": ["S256", "plain"],
        "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        # Resource servers (authz_server's sync token) and admins may also call
        # introspection with a bearer credential; clients use HTTP Basic or form
        # credentials, and introspect only their own tokens.
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "access_token_signing_alg_values_supported": list(SUPPORTED_ALGORITHMS),
        "subject_types_supported": ["public"],
    }
