"""Counting in this authz_server only (the embedded default): exact across its workers.

Check every quota first and count only when the call is admitted: a call refused by one
limit uses up none of the others."""

from __future__ import annotations

from typing import Sequence

from authz_server.throttle.quota import Count, Quota, Verdict, admitted_under
from authz_server.throttle.shared_table import COUNT, SharedTable


class LocalCounters:
    def __init__(self, table: SharedTable) -> None:
        self.table = table

    def take(self, quotas: Sequence[Quota], now: float) -> Verdict:
        if len(quotas) == 1:
            return self._take_one(quotas[0], now)
        table = self.table
        windows = [quota.window(now) for quota in quotas]
        table.acquire()
        try:
            slots = [table.slot(quota, window) for quota, window in zip(quotas, windows)]
            over: list[int] = []
            for position, quota in enumerate(quotas):
                cells, base = slots[position]
                if cells[base + COUNT] >= quota.limit:
                    if quota.stop_on_quota_reach:
                        counts = tuple(Count(q, max(0, q.limit - c[b + COUNT]), w)
                                       for q, w, (c, b) in zip(quotas, windows, slots))
                        return Verdict(counts, refused_by=counts[position])
                    over.append(position)
            counted = []
            for quota, window, (cells, base) in zip(quotas, windows, slots):
                value = cells[base + COUNT] + 1
                cells[base + COUNT] = value
                counted.append(Count(quota, max(0, quota.limit - value), window))
        finally:
            table.release()
        counts = tuple(counted)
        return Verdict(counts, over=tuple(counts[position] for position in over))

    def _take_one(self, quota: Quota, now: float) -> Verdict:
        """The same for the usual single limit, in one call to the table."""
        window = quota.window(now)
        value = self.table.take_one(quota, window)
        if value < quota.limit:
            return admitted_under(quota, quota.limit - value - 1, window)
        count = Count(quota, 0, window)
        if quota.stop_on_quota_reach:
            return Verdict((count,), refused_by=count)
        return Verdict((count,), over=(count,))   # admitted and counted over a soft limit
