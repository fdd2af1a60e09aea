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

    def __init__(self, message: str | None = None, *, api_key_id: str = "") -> None:
        self.message = message or self.default_message
        super().__init__(self.message)
        # For the response and the decision log; decide() fills in what it knows.
        self.challenges: tuple[str, ...] = ()
        self.api_id: str = ""
        self.api_key_id = api_key_id

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
)
