"""This process's calls per (hour, application, API, outcome, reason), for the usage
figures of the developer portal and GetApplicationUsage.

Only calls whose credential was authenticated count: they name an application of the
index (a key or token of it), so the keys are bounded by what the index knows, not by
what clients send. Memory is bounded twice over: hours older than RETENTION_HOURS are
dropped, and past MAX_KEYS distinct keys new ones are not counted (`dropped` says how
many calls were not). The counts are cumulative for the life of the process: a report
carries the current value of each key changed since the last one, so admin_api can take
a report twice, or a late one, without counting twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

HOUR = 3600
RETENTION_HOURS = 25      # admin_api answers up to 24 whole hours, the current one included
MAX_KEYS = 20_000

Key = tuple[int, str, str, str, str]   # (hour start, application id, API id, outcome, reason)


class UsageCounter:
    def __init__(self, clock: Callable[[], float] = time.time, max_keys: int = MAX_KEYS) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._counts: dict[Key, int] = {}
        self._changed: set[Key] = set()
        self._lock = threading.Lock()   # decisions also run on offload threads
        self.dropped = 0

    def record(self, application_id: str, api_id: str, outcome: str, reason: str) -> None:
        if not application_id or not api_id:
            return
        key = (int(self._clock()) // HOUR * HOUR, application_id, api_id, outcome, reason)
        with self._lock:
            count = self._counts.get(key)
            if count is None and len(self._counts) >= self._max_keys:
                self.dropped += 1
                return
            self._counts[key] = (count or 0) + 1
            self._changed.add(key)

    def changed(self) -> list[tuple[Key, int]]:
        """The keys changed since the last call (their cumulative counts), oldest hours
        pruned first. Give them back with `unreport` when the report did not go through."""
        oldest = (int(self._clock()) // HOUR - RETENTION_HOURS + 1) * HOUR
        with self._lock:
            for key in [k for k in self._counts if k[0] < oldest]:
                del self._counts[key]
            changed, self._changed = self._changed, set()
            return [(key, self._counts[key]) for key in sorted(changed) if key in self._counts]

    def unreport(self, keys: list[Key]) -> None:
        with self._lock:
            self._changed.update(key for key in keys if key in self._counts)


# The one counter of this process.
usage = UsageCounter()
