"""Bounded HTTP for key managers: a total deadline, a size cap, JSON or a FetchError.

Key managers are reached on the hot path only on a cache miss, so every call here is
bounded in time and size and never raises anything but FetchError.
"""

from __future__ import annotations

import json
import ssl
import time
from typing import Any

import httpx


class FetchError(Exception):
    """The key manager could not be asked or did not answer usefully (no secret in the text)."""


def new_client(timeout: float, verify: ssl.SSLContext | bool = True) -> httpx.Client:
    """`verify`: the system's CAs by default; with PORTCULLIS_TLS, a context that also
    trusts the mesh's CA (the resident key manager is admin_api's REST port)."""
    # No proxies from the environment and no redirects: the configured URL is the one asked.
    return httpx.Client(
        timeout=httpx.Timeout(timeout),
        verify=verify,
        trust_env=False,
        follow_redirects=False,
        headers={"accept": "application/json", "user-agent": "portcullis-authz"},
    )


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def fetch_json(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    **kwargs: Any,
) -> Any:
    """The JSON body of a 200 answer; FetchError for anything else, within `timeout` overall."""
    deadline = time.monotonic() + timeout
    body = bytearray()
    try:
        with client.stream(method, url, timeout=httpx.Timeout(timeout), **kwargs) as response:
            if response.status_code != 200:
                raise FetchError(f"{method} {url} answered HTTP {response.status_code}")
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise FetchError(f"{method} {url} answered more than {max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise FetchError(f"{method} {url} took longer than {timeout:g} s")
    except httpx.HTTPError as exc:
        raise FetchError(f"{method} {url} failed: {type(exc).__name__}") from None
    except (ValueError, OSError) as exc:  # malformed URL, socket-level trouble outside httpx
        raise FetchError(f"{method} {url} failed: {type(exc).__name__}") from None
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise FetchError(f"{method} {url} did not answer JSON") from None
