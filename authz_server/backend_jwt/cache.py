"""Signed backend JWTs, reused until shortly before they expire.

Keyed by everything the token says (the credential, the API and its configuration, the
environment, the application, the signing key), so a hit is exactly the token that would
have been signed, apart from iat, exp and jti. An entry is served until `exp - margin`,
the margin being 20 % of the validity, at most 30 s: the backend always receives a token
with most of its life ahead. Bounded: least recently used entries go first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Hashable

from authz_server.metrics.recorder import recorder

MAX_REFRESH_MARGIN_SECONDS = 30.0
REFRESH_MARGIN_FRACTION = 0.2


def refresh_margin(validity_seconds: int) -> float:
    return min(MAX_REFRESH_MARGIN_SECONDS, REFRESH_MARGIN_FRACTION * validity_seconds)


@dataclass(frozen=True)
class CachedJwt:
    token: str
    refresh_at: float    # unix seconds: after this, sign a new one


class BackendJwtCache:
    def __init__(self, max_entries: int = 10_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._entries: OrderedDict[Hashable, CachedJwt] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, now: float) -> str | None:
        token = self._get(key, now)
        recorder.cache_lookup("backend_jwt", token is not None)
        return token

    def _get(self, key: Hashable, now: float) -> str | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if now >= entry.refresh_at:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry.token

    def put(self, key: Hashable, token: str, expires_at: float, validity_seconds: int) -> None:
        entry = CachedJwt(token=token, refresh_at=expires_at - refresh_margin(validity_seconds))
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
