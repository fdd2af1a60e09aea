"""OpenID Connect discovery: fetch a provider's `.well-known/openid-configuration` and
check that it describes the issuer we expect (OIDC Discovery 1.0, section 4.3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from admin_api.errors import FailedPrecondition, Unavailable
from admin_api.services import bounded_http

WELL_KNOWN = "/.well-known/openid-configuration"
MAX_DOCUMENT_BYTES = 256 * 1024

# Discovery document member → KeyManager field.
ENDPOINT_MEMBERS = {
    "jwks_uri": "jwks_uri",
    "token_endpoint": "token_endpoint",
    "authorization_endpoint": "authorization_endpoint",
    "revocation_endpoint": "revocation_endpoint",
    "introspection_endpoint": "introspection_endpoint",
    "registration_endpoint": "registration_endpoint",
    "userinfo_endpoint": "userinfo_endpoint",
}


@dataclass(frozen=True)
class Discovered:
    issuer: str
    endpoints: dict[str, str]   # KeyManager field → URL, only members the document has


def document_url(discovery_url: str) -> str:
    """The document's URL: `discovery_url` itself when it names a well-known document,
    else the issuer-style base with the well-known path appended."""
    path = urlsplit(discovery_url).path
    if path.endswith(WELL_KNOWN) or path.endswith("/.well-known/oauth-authorization-server"):
        return discovery_url
    return discovery_url.rstrip("/") + WELL_KNOWN


def fetch(discovery_url: str, *, expected_issuer: str, timeout: float, field: str) -> Discovered:
    """The provider's issuer and endpoints; FailedPrecondition or Unavailable naming the URL."""
    url = document_url(discovery_url)
    try:
        with bounded_http.new_client(timeout) as client:
            response = bounded_http.request(client, "GET", url, max_bytes=MAX_DOCUMENT_BYTES)
    except bounded_http.ResponseTooLarge:
        raise FailedPrecondition(f"{field}: the discovery document {url} is larger than "
                                 f"{MAX_DOCUMENT_BYTES} bytes", field=field) from None
    except bounded_http.ResponseEncoded as exc:
        raise FailedPrecondition(f"{field}: the discovery document {url}: {exc}", field=field) from None
    except httpx.HTTPError as exc:
        raise Unavailable(f"{field}: the discovery document {url} could not be fetched "
                          f"({type(exc).__name__}: {exc})", field=field) from None
    if response.status_code >= 500:
        raise Unavailable(f"{field}: the discovery document {url} answered HTTP {response.status_code}",
                          field=field)
    if response.status_code != 200:
        raise FailedPrecondition(f"{field}: the discovery document {url} answered HTTP "
                                 f"{response.status_code}, not 200", field=field)
    document = _json_object(response, url, field)
    issuer = document.get("issuer")
    if not isinstance(issuer, str) or not issuer:
        raise FailedPrecondition(f"{field}: the discovery document {url} has no issuer", field=field)
    expected = _expected_issuer(url, expected_issuer)
    if expected and issuer.rstrip("/") != expected.rstrip("/"):
        raise FailedPrecondition(f"{field}: the discovery document {url} is for issuer {issuer!r}, "
                                 f"not {expected!r}", field=field)
    endpoints: dict[str, str] = {}
    for member, target in ENDPOINT_MEMBERS.items():
        value = document.get(member)
        if isinstance(value, str) and value:
            endpoints[target] = value
    return Discovered(issuer=issuer, endpoints=endpoints)


def _expected_issuer(url: str, given: str) -> str:
    """The issuer the document must name: the one configured, else the URL's base (a
    document found under another issuer's URL is refused, as OIDC Discovery requires)."""
    if given:
        return given
    return url[: -len(WELL_KNOWN)] if url.endswith(WELL_KNOWN) else ""


def _json_object(response: bounded_http.BoundedResponse, url: str, field: str) -> dict[str, Any]:
    document = response.json_object()
    if document is None:
        raise FailedPrecondition(f"{field}: the discovery document {url} is not a JSON object", field=field)
    return document
