"""Stages 2 and 3 together: the credential selects its authenticator from one explicit table."""

from __future__ import annotations

from typing import Any, Callable

from authz_server.denials import CredentialMissing
from authz_server.index.apis import ApiPolicy
from authz_server.index.policy_index import PolicyIndex
from authz_server.pipeline.api_key import authenticate_api_key
from authz_server.pipeline.bearer import authenticate_bearer
from authz_server.pipeline.context import Identity, RequestContext, Route
from authz_server.pipeline.credentials import ApiKeyCredential, BearerCredential, extract_credential

AUTHENTICATORS: dict[type, Callable[[Any, Route, PolicyIndex, float], Identity]] = {
    ApiKeyCredential: authenticate_api_key,
    BearerCredential: authenticate_bearer,
}


def identify(request: RequestContext, route: Route, index: PolicyIndex, now: float) -> Identity:
    credential = extract_credential(request, route.api)
    if credential is None:
        raise CredentialMissing()
    return AUTHENTICATORS[type(credential)](credential, route, index, now)


def challenges_for(api: ApiPolicy) -> tuple[str, ...]:
    """The WWW-Authenticate challenges of the API's enabled schemes (RFC 6750 style)."""
    challenges = []
    if api.oauth2:
        challenges.append('Bearer realm="portcullis"')
    if api.api_key is not None:
        challenges.append(f'APIKey realm="portcullis", header="{api.api_key.header}"')
    return tuple(challenges)
