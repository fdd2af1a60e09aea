"""The throttle one authz_server process decides with: its counters (the shared table,
with or without Redis), the quota cache and the figures for metrics."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol, Sequence

from authz_server.throttle.applicable import QuotaCache, applicable_quotas
from authz_server.throttle.leasing import LeasedCounters
from authz_server.throttle.local_counting import LocalCounters
from authz_server.throttle.quota import Quota, Verdict
from authz_server.throttle.redis_store import RedisQuotaStore
from authz_server.throttle.shared_table import SharedTable
from authz_server.throttle.stats import STATS, STORE_OFF, ThrottleStats

if TYPE_CHECKING:
    from authz_server.context import Identity, Route
    from authz_server.index.policy_index import PolicyIndex
    from authz_server.index.subscriptions import SubscriptionPolicy
    from authz_server.settings import ThrottleSettings

log = logging.getLogger(__name__)


class Counters(Protocol):
    def take(self, quotas: Sequence[Quota], now: float) -> Verdict: ...


class Throttle:
    def __init__(self, counters: Counters, *, headers_on_allow: bool = True, stats: ThrottleStats = STATS,
                 table: SharedTable | None = None) -> None:
        self.counters = counters
        self.headers_on_allow = headers_on_allow
        self.stats = stats
        self._cache = QuotaCache()
        self._table = table     # closed with the throttle when it made it

    @classmethod
    def local(cls, slots: int = 4096, *, headers_on_allow: bool = True) -> "Throttle":
        """Counting in this process only (tests, a single-process authz_server)."""
        table = SharedTable.private(slots)
        return cls(LocalCounters(table), headers_on_allow=headers_on_allow, table=table)

    @classmethod
    def from_settings(cls, settings: ThrottleSettings, stats: ThrottleStats = STATS) -> "Throttle":
        """The table the supervisor made for its workers, or a private one; leased from
        Redis when PORTCULLIS_REDIS_URL is set."""
        table = SharedTable.open(settings.table_path) if settings.table_path else SharedTable.private(settings.counters)
        counters: Counters
        if settings.redis_url:
            store = RedisQuotaStore(settings.redis_url, timeout=settings.redis_timeout_seconds)
            counters = LeasedCounters(table, store, failure_mode=settings.failure_mode, stats=stats)
        else:
            stats.store_state = STORE_OFF
            counters = LocalCounters(table)
        return cls(counters, headers_on_allow=settings.headers_on_allow, stats=stats, table=table)

    def start(self) -> None:
        if isinstance(self.counters, LeasedCounters):
            self.counters.start()

    def stop(self) -> None:
        if isinstance(self.counters, LeasedCounters):
            self.counters.stop()
        if self._table is not None:
            self._table.close()
            self._table = None

    def quotas(self, route: Route, identity: Identity | None, subscription: SubscriptionPolicy | None,
               index: PolicyIndex) -> tuple[Quota, ...]:
        return applicable_quotas(route, identity, subscription, index, self._cache)

    def take(self, quotas: Sequence[Quota], now: float) -> Verdict:
        verdict = self.counters.take(quotas, now)
        stats = self.stats
        if verdict.refused_by is not None:
            stats.refused[verdict.refused_by.quota.kind] += 1
        else:
            counts = verdict.counts
            if len(counts) == 1:
                stats.allowed[counts[0].quota.kind] += 1
            else:
                for kind in {count.quota.kind for count in counts}:
                    stats.allowed[kind] += 1
            for count in verdict.over:
                stats.over_quota[count.quota.kind] += 1
        return verdict
