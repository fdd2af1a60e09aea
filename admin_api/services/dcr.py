"""RFC 7591 Dynamic Client Registration at an external key manager: the OAuth client
of an application key is created there, with the key manager's initial access token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from admin_api.errors import FailedPrecondition, Unavailable
from admin_api.services import bounded_http

MAX_RESPONSE_BYTES = 256 * 1024


@dataclass(frozen=True)
class RegisteredClient:
    client_id: str
    client_secret: str      # empty for a public client


def register(endpoint: str, access_token: str, metadata: dict[str, Any], *, timeout: float) -> RegisteredClient:
    """POST the client metadata; the registered client's id and secret."""
    headers = {}
    if access_token:
        headers["authorization"] = f"Bearer {access_token}"
    try:
        with bounded_http.new_client(timeout) as client:
            response = bounded_http.request(client, "POST", endpoint, max_bytes=MAX_RESPONSE_BYTES, json=metadata,
                                            headers=headers)
    except (bounded_http.ResponseTooLarge, bounded_http.ResponseEncoded) as exc:
        raise FailedPrecondition(f"client registration at {endpoint} answered a body {exc}") from None
    except httpx.HTTPError as exc:
        raise Unavailable(f"client registration at {endpoint} failed: {type(exc).__name__}: {exc}") from None
    if response.status_code >= 500:
        raise Unavailable(f"client registration at {endpoint} answered HTTP {response.status_code}")
    body = response.json_object()
    if response.status_code not in (200, 201):
        # RFC 7591 section 3.2.2: {"error": ..., "error_description": ...}
        error = body.get("error", "") if body else ""
        detail = body.get("error_description", "") if body else ""
        raise FailedPrecondition(f"client registration at {endpoint} was refused (HTTP {response.status_code}"
                                 f"{', ' + str(error) if error else ''}{': ' + str(detail)[:300] if detail else ''})")
    client_id = body.get("client_id") if body else None
    secret = body.get("client_secret", "") if body else ""
    if not isinstance(client_id, str) or not client_id or len(client_id) > 255:
        raise FailedPrecondition(f"client registration at {endpoint} answered without a usable client_id")
    if not isinstance(secret, str):
        raise FailedPrecondition(f"client registration at {endpoint} answered a client_secret that is not a string")
    return RegisteredClient(client_id=client_id, client_secret=secret)
