"""Stages 2 and 3: the credential a request must carry, and the authenticator its type
selects from one explicit table."""

from __future__ import annotations

from typing import Any, Callable

from authz_server.context import Identity, RequestContext, Route
from authz_server.credentials.api_key import authenticate_api_key
from authz_server.credentials.bearer import authenticate_bearer
from authz_server.credentials.extract import ApiKeyCredential, BearerCredential, Credential, extract_credential
from authz_server.denials import CredentialMissing, Denial, InsufficientScope
from authz_server.index.apis import ApiPolicy
from authz_server.index.policy_index import PolicyIndex
from authz_server.key_managers.services import TokenServices

AUTHENTICATORS: dict[type, Callable[[Any, Route, PolicyIndex, float, TokenServices | None], Identity]] = {
    ApiKeyCredential: authenticate_api_key,
    BearerCredential: authenticate_bearer,
}


def require_credential(request: RequestContext, api: ApiPolicy) -> Credential:
    """The credential of one of the API's schemes; credential_missing when there is none."""
    credential = extract_credential(request, api)
    if credential is None:
        raise CredentialMissing()
    return credential


def authenticate(
    credential: Credential, route: Route, index: PolicyIndex, now: float, tokens: TokenServices | None = None
) -> Identity:
    return AUTHENTICATORS[type(credential)](credential, route, index, now, tokens)


def _quoted(text: str) -> str:
    """An RFC 7230 quoted-string: backslash and quote escaped, control characters dropped."""
    cleaned = "".join(ch for ch in text if ch >= " " and ch != "\x7f")
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _bearer_challenge(denial: Denial | None) -> str:
    """RFC 6750 §3: no error attribute when no token was sent; else the error code."""
    challenge = 'Bearer realm="portcullis"'
    if denial is None or not denial.oauth_error:
        return challenge
    challenge += f", error={_quoted(denial.oauth_error)}"
    if isinstance(denial, InsufficientScope):
        return challenge + f", scope={_quoted(' '.join(denial.scopes))}"
    return challenge + f", error_description={_quoted(denial.message)}"


def challenges_for(api: ApiPolicy, denial: Denial | None = None) -> tuple[str, ...]:
    """The WWW-Authenticate challenges of the API's enabled schemes (RFC 6750 style)."""
    challenges = []
    if api.oauth2:
        challenges.append(_bearer_challenge(denial))
    if api.api_key is not None and (denial is None or not denial.oauth_error):
        challenges.append(f'APIKey realm="portcullis", header="{api.api_key.header}"')
    return tuple(challenges)
