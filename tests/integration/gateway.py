"""Calls through Envoy, polling for propagation with a deadline, and denial assertions."""

from __future__ import annotations

import time
from typing import Callable

import httpx

# Policy changes reach authz_server over the Watch stream: well under a second normally.
PROPAGATION_SECONDS = 3.0
POLL_INTERVAL_SECONDS = 0.05


def describe(response: httpx.Response) -> str:
    reason = response.headers.get("x-portcullis-reason", "-")
    return f"{response.request.method} {response.request.url.path} -> {response.status_code} (reason {reason}): {response.text[:300]}"


def reason_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


def matches(response: httpx.Response, status: int, code: str | None) -> bool:
    return response.status_code == status and (code is None or reason_code(response) == code)


def eventually(
    call: Callable[[], httpx.Response],
    status: int,
    code: str | None = None,
    *,
    timeout: float = PROPAGATION_SECONDS,
) -> httpx.Response:
    """Repeats the call until it answers `status` (and JSON `code`), up to the deadline;
    fails with the last answer otherwise. The wait for a change to propagate, not a
    speed assertion. A denial (a code given) is then checked in full by assert_denied."""
    deadline = time.monotonic() + timeout
    while True:
        response = call()
        if matches(response, status, code):
            if code is not None:
                assert_denied(response, status, code)
            return response
        if time.monotonic() >= deadline:
            raise AssertionError(f"expected {status} {code or ''} within {timeout:g}s, last answer: {describe(response)}")
        time.sleep(POLL_INTERVAL_SECONDS)


def assert_denied(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, describe(response)
    assert response.headers.get("content-type", "").startswith("application/json"), describe(response)
    assert reason_code(response) == code, describe(response)
    assert response.headers.get("x-portcullis-reason") == code, describe(response)
    assert "x-backend-environment" not in response.headers, "a denied request reached a backend"


def assert_allowed(response: httpx.Response, environment: str = "production") -> None:
    assert response.status_code < 300, describe(response)
    assert response.headers.get("x-backend-environment") == environment, describe(response)


def wait_until(condition: Callable[[], bool], description: str, *, timeout: float = PROPAGATION_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"not true within {timeout:g}s: {description}")
        time.sleep(POLL_INTERVAL_SECONDS)
