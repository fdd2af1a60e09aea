"""Dynamic Client Registration at an external key manager: the OAuth client of an
application key is created there (RFC 7591, with the key manager's initial access token),
then updated and deleted at its client configuration endpoint (RFC 7592, with the
registration access token the provider gave for that client).

Every refusal says what the provider said (its `error` and `error_description`): the
admin sees why a registration failed without reading the provider's logs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from admin_api.errors import FailedPrecondition, Unavailable
from admin_api.services import bounded_http

MAX_RESPONSE_BYTES = 256 * 1024
# RFC 7592 §2.2: a client never sends these in an update.
SERVER_MEMBERS = frozenset({"registration_access_token", "registration_client_uri", "client_secret_expires_at",
                            "client_id_issued_at"})


@dataclass(frozen=True)
class RegisteredClient:
    client_id: str
    client_secret: str              # empty for a public client (or an update that did not repeat it)
    registration_client_uri: str = ""       # RFC 7592; "" when the provider offers none
    registration_access_token: str = ""


class ClientGone(Exception):
    """RFC 7592 §2.3: the provider no longer knows the client (401/403/404 on DELETE)."""


def client_metadata(client_name: str, settings: Any) -> dict[str, Any]:
    """RFC 7591 §2 metadata for OAuthClientSettings: what the grants imply, explicitly.

    An omitted `response_types` means `["code"]` (RFC 7591 §2), and a provider that follows
    the RFC then demands `redirect_uris`: a client without the authorization-code grant
    says `[]`, and sends `redirect_uris` only when it has a callback."""
    grants = list(settings.grant_types)
    metadata: dict[str, Any] = {
        "client_name": client_name,
        "grant_types": grants,
        "response_types": ["code"] if "authorization_code" in grants else [],
        "token_endpoint_auth_method": "none" if settings.public_client else "client_secret_basic",
    }
    if settings.callback_url:
        metadata["redirect_uris"] = [settings.callback_url]
    return metadata


def register(endpoint: str, access_token: str, metadata: dict[str, Any], *, timeout: float) -> RegisteredClient:
    """POST the client metadata; the registered client's id, secret and configuration endpoint."""
    response = _call("POST", endpoint, access_token, timeout, "client registration", json=metadata)
    if response.status_code not in (200, 201):
        raise _refused("client registration", endpoint, response)
    return _client_information(response, endpoint, "client registration")


def update(uri: str, access_token: str, client_id: str, metadata: dict[str, Any], *,
           timeout: float) -> RegisteredClient:
    """PUT the client's full metadata (RFC 7592 §2.2: it replaces what the provider holds)."""
    body = {**{k: v for k, v in metadata.items() if k not in SERVER_MEMBERS}, "client_id": client_id}
    response = _call("PUT", uri, access_token, timeout, "client update", json=body)
    if response.status_code != 200:
        raise _refused("client update", uri, response)
    updated = _client_information(response, uri, "client update")
    if updated.client_id != client_id:
        raise FailedPrecondition(f"client update at {uri} answered client_id {updated.client_id!r}, "
                                 f"not {client_id!r}")
    return updated


def delete(uri: str, access_token: str, *, timeout: float) -> None:
    """DELETE the client (RFC 7592 §2.3: 204). ClientGone when the provider says it has no
    such client (or no longer accepts the token, which §2.3 makes the same answer)."""
    response = _call("DELETE", uri, access_token, timeout, "client deletion")
    if response.status_code in (200, 204):
        return
    if response.status_code in (401, 403, 404, 410):
        raise ClientGone(_provider_said(response))
    raise _refused("client deletion", uri, response)


def same_origin(uri: str, endpoint: str) -> bool:
    """Whether a configuration endpoint is http(s) on the registration endpoint's origin:
    it receives the registration access token, which must not go anywhere else."""
    try:
        parts, registration = urlsplit(uri), urlsplit(endpoint)
        return (parts.scheme in ("http", "https") and parts.hostname is not None
                and (parts.scheme, parts.hostname, parts.port) == (registration.scheme, registration.hostname,
                                                                  registration.port))
    except ValueError:
        return False


def _call(method: str, url: str, access_token: str, timeout: float, what: str, **kwargs: Any):
    headers = {"authorization": f"Bearer {access_token}"} if access_token else {}
    try:
        with bounded_http.new_client(timeout) as client:
            response = bounded_http.request(client, method, url, max_bytes=MAX_RESPONSE_BYTES, headers=headers,
                                            **kwargs)
    except (bounded_http.ResponseTooLarge, bounded_http.ResponseEncoded) as exc:
        raise FailedPrecondition(f"{what} at {url} answered a body {exc}") from None
    except httpx.HTTPError as exc:
        raise Unavailable(f"{what} at {url} failed: {type(exc).__name__}: {exc}") from None
    if response.status_code >= 500:
        raise Unavailable(f"{what} at {url} answered HTTP {response.status_code}{_provider_said(response)}")
    return response


def _provider_said(response: bounded_http.BoundedResponse) -> str:
    # RFC 7591 §3.2.2: {"error": ..., "error_description": ...}
    body = response.json_object() or {}
    error, detail = body.get("error", ""), body.get("error_description", "")
    return f"{', ' + str(error)[:100] if error else ''}{': ' + str(detail)[:300] if detail else ''}"


def _refused(what: str, url: str, response: bounded_http.BoundedResponse) -> FailedPrecondition:
    return FailedPrecondition(f"{what} at {url} was refused (HTTP {response.status_code}{_provider_said(response)})")


def _client_information(response: bounded_http.BoundedResponse, url: str, what: str) -> RegisteredClient:
    body = response.json_object() or {}
    client_id = body.get("client_id")
    secret = body.get("client_secret", "")
    uri = body.get("registration_client_uri", "")
    token = body.get("registration_access_token", "")
    if not isinstance(client_id, str) or not client_id or len(client_id) > 255:
        raise FailedPrecondition(f"{what} at {url} answered without a usable client_id")
    if not isinstance(secret, str):
        raise FailedPrecondition(f"{what} at {url} answered a client_secret that is not a string")
    if not isinstance(uri, str) or not isinstance(token, str) or len(uri) > 2000 or len(token) > 4096:
        raise FailedPrecondition(f"{what} at {url} answered an unusable registration_client_uri or "
                                 "registration_access_token")
    return RegisteredClient(client_id=client_id, client_secret=secret, registration_client_uri=uri,
                            registration_access_token=token)
