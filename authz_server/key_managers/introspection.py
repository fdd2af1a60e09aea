"""RFC 7662 token introspection, cached and single-flight.

Answers are cached by SHA-256 of the token (never the token itself) and the key manager:
an active answer until min(exp, now + cache_seconds), an inactive one for
negative_cache_seconds. A transport error, a non-200 status or an answer that is not an
RFC 7662 object raises IntrospectionUnavailable and is never cached.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

import httpx

from authz_server import offload
from authz_server.index.key_managers import KeyManagerPolicy
from authz_server.key_managers.cache import FlightTimeout, SingleFlight, TtlCache
from authz_server.key_managers.http import FetchError, fetch_json, new_client
from authz_server.metrics.recorder import recorder

log = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 64 * 1024


class IntrospectionUnavailable(Exception):
    """The key manager could not say whether the token is active."""


@dataclass(frozen=True)
class IntrospectionResult:
    active: bool
    claims: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


_INACTIVE = IntrospectionResult(active=False)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


class IntrospectionClient:
    def __init__(
        self,
        *,
        client: httpx.Client | None = None,
        sync_token: Callable[[], str | None] = lambda: None,
        timeout: float = 2.0,
        cache_seconds: float = 60.0,
        negative_cache_seconds: float = 10.0,
        max_entries: int = 10_000,
    ) -> None:
        self._client = client or new_client(timeout)
        self._sync_token = sync_token
        self._timeout = timeout
        self._cache_seconds = cache_seconds
        self._negative_seconds = negative_cache_seconds
        self._cache: TtlCache[IntrospectionResult] = TtlCache(max_entries)
        self._flight = SingleFlight()
        self.calls = 0   # HTTP calls made, for logs and tests

    def introspect(self, key_manager: KeyManagerPolicy, token: str, now: float) -> IntrospectionResult:
        key = (key_manager.id, token_digest(token))
        cached = self._cache.get(key, now)
        if cached is not None:
            recorder.cache_lookup("introspection", True)
            return cached
        offload.ensure_may_block()   # a miss asks the key manager over HTTP
        recorder.cache_lookup("introspection", False)   # counted once: after the move to a thread

        def ask() -> IntrospectionResult:
            again = self._cache.get(key, now)  # answered while this call waited for the flight
            if again is not None:
                return again
            result = self._ask(key_manager, token)
            self._cache.put(key, result, self._expiry(result, now), now)
            return result

        try:
            # Followers wait at most a little longer than the leader's own bounded call.
            return self._flight.do(key, ask, wait_timeout=self._timeout * 2 + 1.0)
        except FlightTimeout:
            raise IntrospectionUnavailable(f"introspection at {key_manager.name} did not finish in time") from None

    def close(self) -> None:
        self._client.close()

    def _expiry(self, result: IntrospectionResult, now: float) -> float:
        if not result.active:
            return now + self._negative_seconds
        expiry = now + self._cache_seconds
        exp = result.claims.get("exp")
        if isinstance(exp, (int, float)) and not isinstance(exp, bool):
            expiry = min(expiry, float(exp))
        return expiry

    def _ask(self, key_manager: KeyManagerPolicy, token: str) -> IntrospectionResult:
        if not key_manager.introspection_endpoint:
            raise IntrospectionUnavailable(f"key manager {key_manager.name} has no introspection endpoint")
        headers: dict[str, str] = {}
        auth: httpx.Auth | None = None
        if key_manager.introspection_with_sync_token:
            sync_token = self._sync_token()
            if not sync_token:
                raise IntrospectionUnavailable("the sync token for resident introspection is not available")
            headers["authorization"] = f"Bearer {sync_token}"
        elif key_manager.introspection_client_id:
            auth = httpx.BasicAuth(key_manager.introspection_client_id, key_manager.introspection_client_secret)
        self.calls += 1
        started = time.perf_counter()
        try:
            answer = fetch_json(
                self._client,
                "POST",
                key_manager.introspection_endpoint,
                timeout=self._timeout,
                max_bytes=MAX_ANSWER_BYTES,
                data={"token": token, "token_type_hint": "access_token"},
                headers=headers,
                auth=auth,
            )
        except FetchError as exc:
            recorder.introspection(key_manager.id, time.perf_counter() - started, failed=True)
            log.warning("introspection at key manager %s failed: %s", key_manager.id, exc)
            raise IntrospectionUnavailable(str(exc)) from None
        well_formed = isinstance(answer, dict) and isinstance(answer.get("active"), bool)
        recorder.introspection(key_manager.id, time.perf_counter() - started, failed=not well_formed)
        if not well_formed:
            log.warning("introspection at key manager %s answered without a boolean 'active'", key_manager.id)
            raise IntrospectionUnavailable("the introspection answer is not RFC 7662")
        if not answer["active"]:
            return _INACTIVE
        return IntrospectionResult(active=True, claims=MappingProxyType(dict(answer)))
