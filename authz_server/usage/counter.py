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
        self._reported: dict[Key, int] = {}   # what the last accepted reports said (reporter thread only)
        self._lock = threading.Lock()   # decisions also run on offload threads
        self._hour = 0                  # the current hour's start, and when it ends
        self._hour_end = 0.0
        self.dropped = 0

    def record(self, application_id: str, api_id: str, outcome: str, reason: str) -> None:
        """One call (about 1 µs: a clock read, a tuple, a lock and a dict update)."""
        if not application_id or not api_id:
            return
        now = self._clock()
        if now >= self._hour_end:
            self._hour = int(now) // HOUR * HOUR
            self._hour_end = float(self._hour + HOUR)
        key = (self._hour, application_id, api_id, outcome, reason)
        counts = self._counts
        with self._lock:
            if key in counts:
                counts[key] += 1
            elif len(counts) < self._max_keys:
                counts[key] = 1
            else:
                self.dropped += 1

    def changed(self) -> list[tuple[Key, int]]:
        """The keys whose counts changed since the last accepted report, with their
        cumulative counts, oldest hours pruned first. Taken as reported: give them back
        with `unreport` when the report did not go through."""
        oldest = (int(self._clock()) // HOUR - RETENTION_HOURS + 1) * HOUR
        with self._lock:
            for key in [k for k in self._counts if k[0] < oldest]:
                del self._counts[key]
            current = dict(self._counts)
        for key in [k for k in self._reported if k[0] < oldest]:
            del self._reported[key]
        reported = self._reported
        changed = sorted((key, count) for key, count in current.items() if reported.get(key) != count)
        reported.update(changed)
        return changed

    def unreport(self, keys: list[Key]) -> None:
        for key in keys:
            self._reported.pop(key, None)


# The one counter of this process.
usage = UsageCounter()
