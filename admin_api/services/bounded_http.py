"""admin_api's calls to other servers (discovery, Dynamic Client Registration): the
answer's body is read in chunks and the call stops as soon as it passes its size limit.

Reading whole and measuring after (`response.content`) lets a provider, or whoever its
URL points at, make admin_api buffer an endless body. Compression is refused
(`accept-encoding: identity`, and an encoded answer is an error) so that the bytes
counted are the bytes held: a 1 MiB gzip body can inflate to a gigabyte.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx


class ResponseTooLarge(Exception):
    """The answer's body is over the limit (said by its Content-Length, or seen while reading)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than {limit} bytes")
        self.limit = limit


class ResponseEncoded(Exception):
    """The answer is compressed although identity was asked for."""


@dataclass(frozen=True)
class BoundedResponse:
    status_code: int
    content: bytes

    def json_object(self) -> dict[str, Any] | None:
        """The body as a JSON object, or None (not JSON, not an object, no body)."""
        try:
            body = json.loads(self.content.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None
        return body if isinstance(body, dict) else None


def new_client(timeout: float) -> httpx.Client:
    # The configured URL is the one asked: no redirects.
    return httpx.Client(timeout=timeout, follow_redirects=False)


def request(client: httpx.Client, method: str, url: str, *, max_bytes: int,
            headers: dict[str, str] | None = None, **kwargs: Any) -> BoundedResponse:
    """The status and at most `max_bytes` of body; ResponseTooLarge past that, having
    read no more than one chunk beyond it. httpx.HTTPError as httpx raises it."""
    sent = {"accept": "application/json", "accept-encoding": "identity", **(headers or {})}
    with client.stream(method, url, headers=sent, **kwargs) as response:
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise ResponseEncoded(f"the answer is {encoding}-encoded although identity was asked for")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise ResponseTooLarge(max_bytes)
        body = bytearray()
        for chunk in response.iter_raw():
            body += chunk
            if len(body) > max_bytes:
                raise ResponseTooLarge(max_bytes)
        return BoundedResponse(response.status_code, bytes(body))
