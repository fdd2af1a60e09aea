"""Every way a request can be refused: one class per public reason code.

A stage raises the denial that says what went wrong; `decide()` returns it; the Envoy
adapter turns it into a DeniedHttpResponse with the status, a JSON body
`{"code", "message"}`, `x-portcullis-reason` and, for 401s, the WWW-Authenticate
challenges of the API. The codes are a stable public contract (the README lists them)
and double as metric and log labels.
"""

from __future__ import annotations

from typing import ClassVar


class Denial(Exception):
    code: ClassVar[str] = "internal_error"
    http_status: ClassVar[int] = 500
    default_message: ClassVar[str] = "The request could not be authorized."
    # RFC 6750 §3.1 error code for the Bearer challenge; "" when the denial has none.
    oauth_error: ClassVar[str] = ""

    def __init__(self, message: str | None = None, *, api_key_id: str = "") -> None:
        self.message = message or self.default_message
        super().__init__(self.message)
        # For the response and the decision log; decide() fills in what it knows.
        self.challenges: tuple[str, ...] = ()
        self.api_id: str = ""
        self.api_key_id = api_key_id
        self.credential = "none"   # the kind of credential found (metric label); decide() sets it

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


# --- 400 / 404 / 503 / 500 -------------------------------------------------------------


class BadRequest(Denial):
    code = "bad_request"
    http_status = 400
    default_message = "The request path or query string is malformed."


class ApiNotFound(Denial):
    code = "api_not_found"
    http_status = 404
    default_message = "No API is deployed at this path."


class ApiNotDeployed(Denial):
    code = "api_not_deployed"
    http_status = 404
    default_message = "The API at this path is not deployed."


class ResourceNotFound(Denial):
    code = "resource_not_found"
    http_status = 404
    default_message = "The API has no resource for this method and path."


class PolicyNotReady(Denial):
    code = "policy_not_ready"
    http_status = 503
    default_message = "The authorization service has not received its policy yet."


class KeyManagerUnavailable(Denial):
    code = "key_manager_unavailable"
    http_status = 503
    default_message = "The token's key manager could not be reached and nothing usable is cached."


class BackendJwtUnavailable(Denial):
    code = "backend_jwt_unavailable"
    http_status = 503
    default_message = "The backend JWT this API requires could not be signed."


class InternalError(Denial):
    code = "internal_error"
    http_status = 500
    default_message = "The request could not be authorized because of an internal error."


# --- 401: no valid credential ----------------------------------------------------------


class Unauthenticated(Denial):
    """Missing or invalid credential: answered with the API's WWW-Authenticate challenges."""

    http_status = 401


class CredentialMissing(Unauthenticated):
    code = "credential_missing"
    default_message = "This resource needs a credential and none was sent."


class CredentialAmbiguous(Unauthenticated):
    code = "credential_ambiguous"
    default_message = "The API key was sent more than once with different values."


class CredentialUnsupported(Unauthenticated):
    code = "credential_unsupported"
    default_message = "This kind of credential is not supported yet."


class ApiKeyInvalid(Unauthenticated):
    code = "api_key_invalid"
    default_message = "The API key is not valid."


class ApiKeyRevoked(Unauthenticated):
    code = "api_key_revoked"
    default_message = "The API key has been revoked."


class ApiKeyExpired(Unauthenticated):
    code = "api_key_expired"
    default_message = "The API key has expired."


class ApiKeyWrongApi(Unauthenticated):
    code = "api_key_wrong_api"
    default_message = "The API key is not valid for this API."


# --- 401: an OAuth2 bearer token that is not valid (RFC 6750 invalid_token) --------------


class TokenInvalid(Unauthenticated):
    """A bearer token that cannot be accepted: answered with `error="invalid_token"`."""

    oauth_error = "invalid_token"


class TokenMalformed(TokenInvalid):
    code = "token_malformed"
    default_message = "The bearer token is neither a well-formed JWT nor an opaque token a key manager accepts."


class TokenIssuerUnknown(TokenInvalid):
    code = "token_issuer_unknown"
    default_message = "No key manager of this organization issues tokens with this issuer."


class KeyManagerDisabled(TokenInvalid):
    code = "key_manager_disabled"
    default_message = "The token's key manager is disabled."


class TokenAlgorithmNotAllowed(TokenInvalid):
    code = "token_algorithm_not_allowed"
    default_message = "The token's signing algorithm is not allowed for its key manager."


class TokenKeyUnknown(TokenInvalid):
    code = "token_key_unknown"
    default_message = "The token's signing key is not among its key manager's keys."


class TokenSignatureInvalid(TokenInvalid):
    code = "token_signature_invalid"
    default_message = "The token's signature is not valid."


class TokenExpired(TokenInvalid):
    code = "token_expired"
    default_message = "The token has expired."


class TokenNotYetValid(TokenInvalid):
    code = "token_not_yet_valid"
    default_message = "The token is not valid yet."


class TokenAudienceInvalid(TokenInvalid):
    code = "token_audience_invalid"
    default_message = "The token is not meant for this audience."


class TokenClaimsInvalid(TokenInvalid):
    code = "token_claims_invalid"
    default_message = "A required claim of the token is missing or has the wrong type."


class TokenRevoked(TokenInvalid):
    code = "token_revoked"
    default_message = "The token has been revoked."


class TokenInactive(TokenInvalid):
    code = "token_inactive"
    default_message = "The key manager says the token is not active."


class TokenClientUnknown(TokenInvalid):
    code = "token_client_unknown"
    default_message = "The token's client is not an application key of this organization."


# --- 403: a valid credential that is not allowed here ----------------------------------


class Forbidden(Denial):
    http_status = 403


class ApiBlocked(Forbidden):
    code = "api_blocked"
    default_message = "The API is blocked."


class EnvironmentUnavailable(Forbidden):
    code = "environment_unavailable"
    default_message = "The API has no endpoint for the key's environment."


class IpNotAllowed(Forbidden):
    code = "ip_not_allowed"
    default_message = "The API key may not be used from this IP address."


class RefererNotAllowed(Forbidden):
    code = "referer_not_allowed"
    default_message = "The API key may not be used from this referrer."


class ApiKeyNotAssociated(Forbidden):
    code = "api_key_not_associated"
    default_message = "The API needs a subscription and the API key belongs to no application."


class SubscriptionMissing(Forbidden):
    code = "subscription_missing"
    default_message = "The key's application is not subscribed to this API."


class SubscriptionInactive(Forbidden):
    code = "subscription_inactive"
    default_message = "The subscription to this API is not active."


class SubscriptionProductionBlocked(Forbidden):
    code = "subscription_production_blocked"
    default_message = "The subscription to this API is blocked for production keys."


class KeyManagerNotAllowed(Forbidden):
    code = "key_manager_not_allowed"
    default_message = "Tokens of this key manager are not accepted by this API."


class InsufficientScope(Forbidden):
    code = "insufficient_scope"
    default_message = "The token holds none of the scopes this resource requires."
    oauth_error = "insufficient_scope"

    def __init__(self, scopes: tuple[str, ...] = (), message: str | None = None) -> None:
        super().__init__(message)
        self.scopes = scopes   # the resource's scopes, for the challenge's scope="..."


# The public table, in the README's order. A test checks it against the brief.
ALL_DENIALS: tuple[type[Denial], ...] = (
    ApiNotFound,
    ApiNotDeployed,
    ResourceNotFound,
    ApiBlocked,
    CredentialMissing,
    CredentialAmbiguous,
    CredentialUnsupported,
    ApiKeyInvalid,
    ApiKeyRevoked,
    ApiKeyExpired,
    ApiKeyWrongApi,
    EnvironmentUnavailable,
    IpNotAllowed,
    RefererNotAllowed,
    ApiKeyNotAssociated,
    SubscriptionMissing,
    SubscriptionInactive,
    SubscriptionProductionBlocked,
    PolicyNotReady,
    BadRequest,
    InternalError,
    # Issue 3: OAuth2 tokens, in the README's order.
    TokenMalformed,
    TokenIssuerUnknown,
    KeyManagerDisabled,
    KeyManagerNotAllowed,
    TokenAlgorithmNotAllowed,
    TokenKeyUnknown,
    TokenSignatureInvalid,
    TokenExpired,
    TokenNotYetValid,
    TokenAudienceInvalid,
    TokenClaimsInvalid,
    TokenRevoked,
    TokenInactive,
    TokenClientUnknown,
    KeyManagerUnavailable,
    InsufficientScope,
)
