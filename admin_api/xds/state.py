"""The current xDS snapshot, and waking the streams that serve it when it changes."""

from __future__ import annotations

import threading
from collections.abc import Callable

from admin_api.xds.resources import XdsSnapshot


class XdsState:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: XdsSnapshot | None = None
        self._listeners: set[Callable[[], None]] = set()

    @property
    def current(self) -> XdsSnapshot | None:
        return self._current

    def publish(self, snapshot: XdsSnapshot) -> XdsSnapshot:
        with self._lock:
            self._current = snapshot
            listeners = list(self._listeners)
        for wake in listeners:
            wake()
        return snapshot

    def subscribe(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call `wake` (cheap, non-blocking) on every new snapshot; returns the unsubscribe."""
        with self._lock:
            self._listeners.add(wake)
        return lambda: self._unsubscribe(wake)

    def _unsubscribe(self, wake: Callable[[], None]) -> None:
        with self._lock:
            self._listeners.discard(wake)
