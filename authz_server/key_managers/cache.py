"""Two small concurrency tools for the token caches: a bounded TTL cache and single flight."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

V = TypeVar("V")


class TtlCache(Generic[V]):
    """At most `max_entries` values, each until its own expiry (least recently used out first)."""

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._items: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, now: float) -> V | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            expires_at, value = item
            if now >= expires_at:
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V, expires_at: float, now: float) -> None:
        if expires_at <= now:
            return
        with self._lock:
            self._items[key] = (expires_at, value)
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class _Call:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.value = None
        self.error: BaseException | None = None


class FlightTimeout(Exception):
    """A follower gave up waiting for the leader's answer."""


class SingleFlight:
    """Concurrent calls with the same key share one execution of `fn` (the leader's)."""

    def __init__(self) -> None:
        self._calls: dict[Hashable, _Call] = {}
        self._lock = threading.Lock()

    def do(self, key: Hashable, fn: Callable[[], V], *, wait_timeout: float) -> V:
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if call is None:
                call = self._calls[key] = _Call()
        if leader:
            try:
                call.value = fn()
            except BaseException as exc:  # handed to every follower, then re-raised here
                call.error = exc
            finally:
                with self._lock:
                    self._calls.pop(key, None)
                call.done.set()
        elif not call.done.wait(wait_timeout):
            raise FlightTimeout()
        if call.error is not None:
            raise call.error
        return call.value  # type: ignore[return-value]
