"""Stage 2, credential: find the credential of each scheme the API enables.

Each extractor returns None when there is no credential of its kind ("not mine") and
raises a denial when there is one that cannot be used as sent. The first extractor that
answers wins; none answering on a secured resource is `credential_missing`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from authz_server.context import RequestContext
from authz_server.denials import CredentialAmbiguous
from authz_server.index.apis import ApiPolicy


@dataclass(frozen=True)
class ApiKeyCredential:
    value: str = ""

    # A property, not a ClassVar: compiled (authz_server/compiled), dataclasses would take
    # a ClassVar for a field.
    @property
    def label(self) -> str:
        """The kind of credential found, as a metric label."""
        return "api_key"

    def __repr__(self) -> str:  # never show the key in a log or a traceback
        return "ApiKeyCredential(value=<redacted>)"


@dataclass(frozen=True)
class BearerCredential:
    token: str = ""

    @property
    def label(self) -> str:
        return "oauth2"

    def __repr__(self) -> str:
        return "BearerCredential(token=<redacted>)"


Credential = ApiKeyCredential | BearerCredential


def api_key_credential(request: RequestContext, api: ApiPolicy) -> ApiKeyCredential | None:
    scheme = api.api_key
    if scheme is None:
        return None
    values = request.headers.get(scheme.header, ())   # the scheme's header name is lower case
    if scheme.query_param is not None and request.query:
        values += request.query_values(scheme.query_param)
    if not values:
        return None
    if len(values) > 1 and len(set(values)) > 1:
        raise CredentialAmbiguous()
    return ApiKeyCredential(values[0])


def bearer_credential(request: RequestContext, api: ApiPolicy) -> BearerCredential | None:
    if not api.oauth2:
        return None
    tokens = []
    for value in request.header_values("authorization"):
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            tokens.append(token.strip())
    if len(set(tokens)) > 1:
        # Two different tokens: which one the client means is unknowable (as for keys).
        raise CredentialAmbiguous("The request carries more than one bearer token.")
    return BearerCredential(tokens[0]) if tokens else None


# In order: the first extractor that finds a credential decides which authenticator runs.
# On an API that takes both, a request with an API key AND a bearer token is decided by the
# API key alone (as before OAuth2 existed); the bearer token is not looked at.
EXTRACTORS: tuple[Callable[[RequestContext, ApiPolicy], Credential | None], ...] = (
    api_key_credential,
    bearer_credential,
)


def extract_credential(request: RequestContext, api: ApiPolicy) -> Credential | None:
    for extractor in EXTRACTORS:
        credential = extractor(request, api)
        if credential is not None:
            return credential
    return None
