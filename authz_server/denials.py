"""Every way a request can be refused: one class per public reason code.

A stage raises the denial that says what went wrong; `decide()` returns it; the Envoy
adapter turns it into a DeniedHttpResponse with the status, a JSON body
`{"code", "message"}`, `x-portcullis-reason` and, for 401s, the WWW-Authenticate
challenges of the API. The codes are a stable public contract (the README lists them)
and double as metric and log labels.
"""

from __future__ import annotations

from typing import Any, ClassVar, Iterator

# What every concrete denial declares itself (an abstract base declares none of them).
DECLARED_BY_EACH = ("code", "http_status", "default_message")


class Denial(Exception):
    """Abstract base of every denial. Only the concrete classes (the leaves of the public
    table) carry a reason code, a status and a message; a base such as Unauthenticated
    says what its denials have in common (a challenge), never a code."""

    code: ClassVar[str]
    http_status: ClassVar[int]
    default_message: ClassVar[str]
    # RFC 6750 §3.1 error code for the Bearer challenge; "" when the denial has none.
    oauth_error: ClassVar[str] = ""
    abstract: ClassVar[bool] = True

    def __init_subclass__(cls, *, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.abstract = abstract
        if cls.__module__ != __name__:
            raise TypeError(f"{cls.__name__}: every denial is declared in {__name__} (the public table)")
        own = [name for name in DECLARED_BY_EACH if name in vars(cls)]
        if abstract and own:
            raise TypeError(f"{cls.__name__} is abstract and must not declare {', '.join(own)} "
                            "(each concrete denial declares its own)")
        if not abstract and len(own) < len(DECLARED_BY_EACH):
            missing = [name for name in DECLARED_BY_EACH if name not in own]
            raise TypeError(f"{cls.__name__} must declare its own {', '.join(missing)} "
                            "(or, as a base of other denials, be declared with abstract=True)")

    def __init__(self, message: str | None = None, *, api_key_id: str = "") -> None:
        if type(self).abstract:
            raise TypeError(f"{type(self).__name__} is abstract: raise one of its concrete denials")
        self.message = message or self.default_message
        super().__init__(self.message)
        # For the response and the decision log; decide() fills in what it knows.
        self.challenges: tuple[str, ...] = ()
        self.api_id: str = ""
        self.api_key_id = api_key_id
        self.credential = "none"   # the kind of credential found (metric label); decide() sets it
        # Response headers besides the reason's (e.g. Retry-After and RateLimit on a 429).
        self.headers: tuple[tuple[str, str], ...] = ()

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


class ThrottlingUnavailable(Denial):
    code = "throttling_unavailable"
    http_status = 503
    default_message = "The shared throttling counters cannot be reached (failure mode closed)."


class InternalError(Denial):
    code = "internal_error"
    http_status = 500
    default_message = "The request could not be authorized because of an internal error."


# --- 401: no valid credential ----------------------------------------------------------


class Unauthenticated(Denial, abstract=True):
    """Missing or invalid credential (401): answered with the API's WWW-Authenticate challenges."""


class CredentialMissing(Unauthenticated):
    code = "credential_missing"
    http_status = 401
    default_message = "This resource needs a credential and none was sent."


class CredentialAmbiguous(Unauthenticated):
    code = "credential_ambiguous"
    http_status = 401
    default_message = "The API key was sent more than once with different values."


class CredentialUnsupported(Unauthenticated):
    code = "credential_unsupported"
    http_status = 401
    default_message = "This kind of credential is not supported yet."


class ApiKeyInvalid(Unauthenticated):
    code = "api_key_invalid"
    http_status = 401
    default_message = "The API key is not valid."


class ApiKeyRevoked(Unauthenticated):
    code = "api_key_revoked"
    http_status = 401
    default_message = "The API key has been revoked."


class ApiKeyExpired(Unauthenticated):
    code = "api_key_expired"
    http_status = 401
    default_message = "The API key has expired."


class ApiKeyWrongApi(Unauthenticated):
    code = "api_key_wrong_api"
    http_status = 401
    default_message = "The API key is not valid for this API."


# --- 401: an OAuth2 bearer token that is not valid (RFC 6750 invalid_token) --------------


class TokenInvalid(Unauthenticated, abstract=True):
    """A bearer token that cannot be accepted: answered with `error="invalid_token"`."""

    oauth_error = "invalid_token"


class TokenMalformed(TokenInvalid):
    code = "token_malformed"
    http_status = 401
    default_message = "The bearer token is neither a well-formed JWT nor an opaque token a key manager accepts."


class TokenIssuerUnknown(TokenInvalid):
    code = "token_issuer_unknown"
    http_status = 401
    default_message = "No key manager of this organization issues tokens with this issuer."


class KeyManagerDisabled(TokenInvalid):
    code = "key_manager_disabled"
    http_status = 401
    default_message = "The token's key manager is disabled."


class TokenAlgorithmNotAllowed(TokenInvalid):
    code = "token_algorithm_not_allowed"
    http_status = 401
    default_message = "The token's signing algorithm is not allowed for its key manager."


class TokenKeyUnknown(TokenInvalid):
    code = "token_key_unknown"
    http_status = 401
    default_message = "The token's signing key is not among its key manager's keys."


class TokenSignatureInvalid(TokenInvalid):
    code = "token_signature_invalid"
    http_status = 401
    default_message = "The token's signature is not valid."


class TokenExpired(TokenInvalid):
    code = "token_expired"
    http_status = 401
    default_message = "The token has expired."


class TokenNotYetValid(TokenInvalid):
    code = "token_not_yet_valid"
    http_status = 401
    default_message = "The token is not valid yet."


class TokenAudienceInvalid(TokenInvalid):
    code = "token_audience_invalid"
    http_status = 401
    default_message = "The token is not meant for this audience."


class TokenClaimsInvalid(TokenInvalid):
    code = "token_claims_invalid"
    http_status = 401
    default_message = "A required claim of the token is missing or has the wrong type."


class TokenRevoked(TokenInvalid):
    code = "token_revoked"
    http_status = 401
    default_message = "The token has been revoked."


class TokenInactive(TokenInvalid):
    code = "token_inactive"
    http_status = 401
    default_message = "The key manager says the token is not active."


class TokenClientUnknown(TokenInvalid):
    code = "token_client_unknown"
    http_status = 401
    default_message = "The token's client is not an application key of this organization."


# --- 403: a valid credential that is not allowed here ----------------------------------


class Forbidden(Denial, abstract=True):
    """A valid credential that may not do this (403)."""


class ApiBlocked(Forbidden):
    code = "api_blocked"
    http_status = 403
    default_message = "The API is blocked."


class EnvironmentUnavailable(Forbidden):
    code = "environment_unavailable"
    http_status = 403
    default_message = "The API has no endpoint for the key's environment."


class IpNotAllowed(Forbidden):
    code = "ip_not_allowed"
    http_status = 403
    default_message = "The API key may not be used from this IP address."


class RefererNotAllowed(Forbidden):
    code = "referer_not_allowed"
    http_status = 403
    default_message = "The API key may not be used from this referrer."


class ApiKeyNotAssociated(Forbidden):
    code = "api_key_not_associated"
    http_status = 403
    default_message = "The API needs a subscription and the API key belongs to no application."


class SubscriptionMissing(Forbidden):
    code = "subscription_missing"
    http_status = 403
    default_message = "The key's application is not subscribed to this API."


class SubscriptionInactive(Forbidden):
    code = "subscription_inactive"
    http_status = 403
    default_message = "The subscription to this API is not active."


class SubscriptionProductionBlocked(Forbidden):
    code = "subscription_production_blocked"
    http_status = 403
    default_message = "The subscription to this API is blocked for production keys."


class KeyManagerNotAllowed(Forbidden):
    code = "key_manager_not_allowed"
    http_status = 403
    default_message = "Tokens of this key manager are not accepted by this API."


class InsufficientScope(Forbidden):
    code = "insufficient_scope"
    http_status = 403
    default_message = "The token holds none of the scopes this resource requires."
    oauth_error = "insufficient_scope"

    def __init__(self, scopes: tuple[str, ...] = (), message: str | None = None) -> None:
        super().__init__(message)
        self.scopes = scopes   # the resource's scopes, for the challenge's scope="..."


# --- 429: over a throttling limit -------------------------------------------------------


class Throttled(Denial, abstract=True):
    """Over a limit: answered with Retry-After and the RateLimit fields."""


class SubscriptionThrottled(Throttled):
    code = "subscription_throttled"
    http_status = 429
    default_message = "The subscription's tier allows no more calls to this API in this window."


class ApplicationThrottled(Throttled):
    code = "application_throttled"
    http_status = 429
    default_message = "The application's tier allows no more calls in this window."


class ApiThrottled(Throttled):
    code = "api_throttled"
    http_status = 429
    default_message = "This API (or resource) allows no more calls in this window."


class BurstThrottled(Throttled):
    code = "burst_throttled"
    http_status = 429
    default_message = "Too many calls in a short time (burst control): slow down."


def _concrete(base: type[Denial]) -> Iterator[type[Denial]]:
    for cls in base.__subclasses__():
        if not cls.abstract:
            yield cls
        yield from _concrete(cls)


# The public table (the README's "Reason codes"), derived from the classes above: a new
# denial class is in it by being declared. Codes are unique: they are the public contract.
ALL_DENIALS: tuple[type[Denial], ...] = tuple(_concrete(Denial))
BY_CODE: dict[str, type[Denial]] = {cls.code: cls for cls in ALL_DENIALS}
if len(BY_CODE) != len(ALL_DENIALS):
    raise TypeError("two denial classes share a reason code")
