"""This process's figures, counted in plain ints on the hot path and read at scrape time.

Every update is one dict or list increment under the GIL (no lock: a scrape copies the
dicts, which the GIL keeps consistent); `enabled` False (PORTCULLIS_AUTHZ_METRICS=off)
makes every record a single attribute test, for the bench's on/off comparison.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

# Decision latency, server side (parse, decide, respond): cached decisions take tens of µs,
# ones that wait on a key manager up to the 1 s network bound.
DECISION_BUCKETS = (0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                    0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Introspection calls go over the network.
NETWORK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

OUTCOME_ALLOW = "allow"
OUTCOME_DENY = "deny"
OUTCOME_WOULD_DENY = "would_deny"   # an API in DRY_RUN: decided deny, allowed


class Histogram:
    """Counts per bucket (the last one is +Inf) and the sum; cumulated only when exposed."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def snapshot(self) -> list[Any]:
        return [list(self.counts), self.total]


class ProcessMetrics:
    def __init__(self) -> None:
        self.enabled = True
        self._zero()

    def _zero(self) -> None:
        # (outcome, reason, api_id, credential) -> decisions; api ids become names at scrape.
        self.decisions: dict[tuple[str, str, str, str], int] = {}
        self.decision_seconds = Histogram(DECISION_BUCKETS)
        self.offloaded = 0            # decisions moved to a thread (they wait on a key manager)
        self.offload_refused = 0      # ... refused because too many were waiting already
        # (cache, result) -> lookups: verified_token, introspection, backend_jwt; hit or miss.
        self.cache: dict[tuple[str, str], int] = {}
        # JWKS URI (or "certificate") -> fetches / failures; key manager names at scrape.
        self.jwks_fetches: dict[str, int] = {}
        self.jwks_failures: dict[str, int] = {}
        # key manager id -> introspection calls / failures / latency.
        self.introspection_calls: dict[str, int] = {}
        self.introspection_failures: dict[str, int] = {}
        self.introspection_seconds: dict[str, Histogram] = {}

    def decision(self, outcome: str, reason: str, api_id: str, credential: str, seconds: float) -> None:
        if not self.enabled:
            return
        key = (outcome, reason, api_id, credential)
        decisions = self.decisions
        decisions[key] = decisions.get(key, 0) + 1
        self.decision_seconds.observe(seconds)

    def cache_lookup(self, cache: str, hit: bool) -> None:
        if self.enabled:
            key = (cache, "hit" if hit else "miss")
            self.cache[key] = self.cache.get(key, 0) + 1

    def offload(self, refused: bool = False) -> None:
        if not self.enabled:
            return
        if refused:
            self.offload_refused += 1
        else:
            self.offloaded += 1

    def jwks_fetch(self, source: str, failed: bool) -> None:
        if not self.enabled:
            return
        self.jwks_fetches[source] = self.jwks_fetches.get(source, 0) + 1
        if failed:
            self.jwks_failures[source] = self.jwks_failures.get(source, 0) + 1

    def introspection(self, key_manager_id: str, seconds: float, failed: bool) -> None:
        if not self.enabled:
            return
        self.introspection_calls[key_manager_id] = self.introspection_calls.get(key_manager_id, 0) + 1
        if failed:
            self.introspection_failures[key_manager_id] = self.introspection_failures.get(key_manager_id, 0) + 1
        histogram = self.introspection_seconds.get(key_manager_id)
        if histogram is None:
            histogram = self.introspection_seconds[key_manager_id] = Histogram(NETWORK_BUCKETS)
        histogram.observe(seconds)

    def reset(self) -> None:
        """For tests: every figure back to zero (enabled stays as it is)."""
        self._zero()


# The one recorder of this process.
recorder = ProcessMetrics()
