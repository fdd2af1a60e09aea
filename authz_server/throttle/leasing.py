"""Counting across replicas: quota leased from Redis, spent locally, refilled in the background.

A replica's workers spend a lease from their shared table (inline, no network); when a
lease runs low, a background thread asks Redis for the next one (one pipeline for every
counter that needs one), so a steady caller never waits. A call whose counter has no
lease at all (the first call of a window, or faster than the refills) never waits on
the event loop either: `offload.ensure_may_block()` moves the decision to a thread, which
asks Redis itself (bounded by the Redis timeout), before anything is counted.

Accuracy: Redis never grants more than the limit in a window, so all replicas together
admit at most L. A lease is at most 1 % of L (at least one call), so what a replica holds
unspent when the window ends is at most 1 % of L: with up to five replicas on one
counter, at least 0.95 L is admitted under excess demand. Leases are fetched ahead only
while ten more leases are left under the limit (so never for limits under 1,000 calls: each
call there asks Redis on a thread), so a replica holds no spare calls near the end.

Redis away or slow: the failure mode decides. `open` counts locally (this replica admits
up to L on its own, as without Redis); `closed` spends what is already leased and then
refuses. Each process logs once when Redis goes away and once when it is back, pings it
every second meanwhile, and never lets a decision wait on it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable, Sequence

from authz_server import offload
from authz_server.throttle.quota import Count, Quota, Verdict
from authz_server.throttle.redis_store import Grant, LeaseRequest, RedisQuotaStore, StoreUnavailable
from authz_server.throttle.shared_table import COUNT, EXHAUSTED, FLAGS, LEASE, LIMIT, PENDING, USED, SharedTable
from authz_server.throttle.stats import STATS, STORE_DOWN, STORE_UP, ThrottleStats
from authz_server.throttle.windows import Window

log = logging.getLogger(__name__)

FAILURE_MODES = ("open", "closed")
LEASE_FRACTION = 100          # a lease is at most L / 100 calls
# Leases are fetched ahead (in the background) only while this many more are left under the
# limit: near the end of a quota no replica holds calls another could have used.
PREFETCH_HEADROOM = 10
_ATTEMPTS = 3                 # leases fetched for one call before it counts as refused
_RETRY_SECONDS = 1.0


def lease_size(limit: int) -> int:
    return max(1, limit // LEASE_FRACTION)


class StoreHealth:
    """Up or down, as the last round trip said; logs each change once."""

    def __init__(self, url: str, stats: ThrottleStats) -> None:
        self._url = url
        self._stats = stats
        self.up = True
        stats.store_state = STORE_UP

    def failed(self, error: str, mode: str) -> None:
        self._stats.store_errors += 1
        if self.up:
            self.up = False
            self._stats.store_state = STORE_DOWN
            self._stats.store_state_changes += 1
            fallback = "counting locally" if mode == "open" else "refusing calls without a lease"
            log.error("throttling: Redis at %s is unavailable (%s): %s (failure mode %s) until it is back",
                      _safe_url(self._url), error, fallback, mode)

    def recovered(self) -> None:
        if not self.up:
            self.up = True
            self._stats.store_state = STORE_UP
            self._stats.store_state_changes += 1
            log.warning("throttling: Redis at %s is back: counters are shared again", _safe_url(self._url))


class LeasedCounters:
    def __init__(self, table: SharedTable, store: RedisQuotaStore, *, failure_mode: str = "open",
                 clock: Callable[[], float] = time.time, stats: ThrottleStats = STATS) -> None:
        if failure_mode not in FAILURE_MODES:
            raise ValueError(f"failure mode must be one of {FAILURE_MODES}")
        self.table = table
        self.store = store
        self.failure_mode = failure_mode
        self.health = StoreHealth(store.url, stats)
        self._clock = clock
        self._stats = stats
        self._refills: queue.SimpleQueue[tuple[Quota, Window] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    # --- the decision ------------------------------------------------------------------------

    def take(self, quotas: Sequence[Quota], now: float) -> Verdict:
        windows = [quota.window(now) for quota in quotas]
        for _ in range(_ATTEMPTS):
            verdict, missing = self._try(quotas, windows, give_up=False)
            if verdict is not None:
                return verdict
            offload.ensure_may_block()    # inline: nothing counted yet, the call moves to a thread
            self._fetch([(quotas[i], windows[i]) for i in missing])
        verdict, _ = self._try(quotas, windows, give_up=True)
        return verdict

    def _try(self, quotas: Sequence[Quota], windows: list[Window], *, give_up: bool) -> tuple[Verdict | None, list[int]]:
        table = self.table
        up = self.health.up
        table.acquire()   # not `locked()`: its generator costs ~1 µs a decision
        try:
            slots = [table.slot(quota, window) for quota, window in zip(quotas, windows)]
            missing: list[int] = []
            over: list[int] = []
            refused: int | None = None
            unavailable = False
            for position, quota in enumerate(quotas):
                cells, base = slots[position]
                if cells[base + LEASE] > 0:
                    continue
                if cells[base + FLAGS] & EXHAUSTED and cells[base + LIMIT] == quota.limit:
                    exceeded = True
                elif not up:
                    if self.failure_mode == "closed":
                        refused, unavailable = position, True
                        break
                    exceeded = cells[base + COUNT] >= quota.limit
                elif give_up:
                    exceeded = True
                else:
                    missing.append(position)
                    continue
                if exceeded:
                    if quota.stop_on_quota_reach:
                        refused = position
                        break
                    over.append(position)
            if refused is not None:
                counts = tuple(_count(q, w, c, b) for q, w, (c, b) in zip(quotas, windows, slots))
                return Verdict(counts, refused_by=counts[refused], store_unavailable=unavailable), []
            if missing:
                return None, missing
            counted = []
            for quota, window, (cells, base) in zip(quotas, windows, slots):
                cells[base + COUNT] += 1
                lease = cells[base + LEASE]
                if lease > 0:
                    cells[base + LEASE] = lease = lease - 1
                    size = lease_size(quota.limit)
                    if (up and lease <= size // 2 and quota.limit - cells[base + USED] >= PREFETCH_HEADROOM * size
                            and not cells[base + FLAGS] & (PENDING | EXHAUSTED)):
                        cells[base + FLAGS] |= PENDING
                        self._refills.put((quota, window))
                counted.append(_count(quota, window, cells, base))
        finally:
            table.release()
        counts = tuple(counted)
        return Verdict(counts, over=tuple(counts[position] for position in over)), []

    # --- leases ------------------------------------------------------------------------------

    def _fetch(self, wanted: list[tuple[Quota, Window]]) -> None:
        """Ask Redis for a lease of each (blocking, bounded by the Redis timeout)."""
        if not wanted or not self.health.up:
            return
        requests = [LeaseRequest(quota.key, window.start, window.end, quota.limit, lease_size(quota.limit))
                    for quota, window in wanted]
        self._stats.lease_round_trips += 1
        try:
            grants = self.store.grant(requests)
        except StoreUnavailable as exc:
            self._clear_pending(wanted)
            self.health.failed(str(exc), self.failure_mode)
            return
        self._apply(wanted, grants)

    def _apply(self, wanted: list[tuple[Quota, Window]], grants: list[Grant]) -> None:
        table = self.table
        now = self._clock()
        with table.locked():
            for (quota, window), grant in zip(wanted, grants):
                if quota.window(now).start != window.start:
                    continue   # the window this lease was for is over
                cells, base = table.slot(quota, window)
                cells[base + LEASE] += grant.granted
                cells[base + USED] = max(cells[base + USED], grant.used)
                cells[base + LIMIT] = quota.limit
                flags = cells[base + FLAGS] & ~PENDING
                cells[base + FLAGS] = flags | EXHAUSTED if grant.granted == 0 else flags & ~EXHAUSTED

    def _clear_pending(self, wanted: list[tuple[Quota, Window]]) -> None:
        table = self.table
        now = self._clock()
        with table.locked():
            for quota, window in wanted:
                if quota.window(now).start == window.start:
                    cells, base = table.slot(quota, window)
                    cells[base + FLAGS] &= ~PENDING

    # --- the background thread ---------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._refill_forever, name="throttle-leases", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._refills.put(None)
            self._thread.join(timeout=5)
            self._thread = None
        self.store.close()

    def _refill_forever(self) -> None:
        while True:
            try:
                first = self._refills.get(timeout=_RETRY_SECONDS)
            except queue.Empty:
                first = ...
            if first is None:
                return
            if not self.health.up:
                self._probe()
            batch = [] if first is ... else [first]
            while True:   # everything queued meanwhile goes in the same pipeline
                try:
                    item = self._refills.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    return
                batch.append(item)
            if batch:
                if self.health.up:
                    self._fetch(batch)
                else:
                    self._clear_pending(batch)

    def _probe(self) -> None:
        try:
            self.store.ping()
        except StoreUnavailable:
            self._stats.store_errors += 1
            return
        self.health.recovered()


def _count(quota: Quota, window: Window, cells, base: int) -> Count:
    used = cells[base + USED]
    if used:
        remaining = quota.limit - used + cells[base + LEASE]
    else:
        remaining = quota.limit - cells[base + COUNT]
    return Count(quota, max(0, min(remaining, quota.limit)), window)


def _safe_url(url: str) -> str:
    """The Redis URL without its password."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
