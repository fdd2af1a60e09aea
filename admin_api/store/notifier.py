"""Wakes Watch streams in this process when a write commits.

A commit made by another admin_api replica on the same PostgreSQL database arrives here
through the change listener (admin_api.store.listener, LISTEN/NOTIFY); Watch and the xDS
follower also poll the change log, so a lost notification only costs one poll interval.
"""

from __future__ import annotations

import threading


class ChangeNotifier:
    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._latest = 0
        self._closed = False

    def notify(self, revision: int) -> None:
        with self._condition:
            self._latest = max(self._latest, revision)
            self._condition.notify_all()

    def close(self) -> None:
        """Wake every waiter for good (server shutdown)."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def latest(self) -> int:
        """The newest revision known to be committed (0 before the first one)."""
        return self._latest

    def wake(self) -> None:
        """Wake every waiter once, e.g. when a client cancels its stream."""
        with self._condition:
            self._condition.notify_all()

    def wait_beyond(self, revision: int, timeout: float) -> None:
        """Return once a revision newer than `revision` was committed here, on close, on
        wake, or after `timeout` seconds, whichever comes first."""
        with self._condition:
            if self._latest > revision or self._closed:
                return
            self._condition.wait(timeout)
