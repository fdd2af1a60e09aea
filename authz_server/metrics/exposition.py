"""Figures -> Prometheus families (prometheus-client renders the text format and serves it).

Every family is declared here once, with its help text and label names, so that a name
used in one place and forgotten in another cannot happen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from authz_server.metrics.merge import Figures
from authz_server.metrics.recorder import DECISION_BUCKETS, NETWORK_BUCKETS


@dataclass(frozen=True)
class Family:
    name: str            # without the _total suffix for counters (prometheus-client adds it)
    help: str
    labels: tuple[str, ...] = ()


COUNTERS = {
    "portcullis_decisions_total": Family(
        "portcullis_decisions", "Decisions by outcome (allow, deny, would_deny), reason code, API and credential kind",
        ("outcome", "reason", "api", "credential")),
    "portcullis_decisions_offloaded_total": Family(
        "portcullis_decisions_offloaded", "Decisions moved to a thread because they wait on a key manager"),
    "portcullis_decisions_offload_refused_total": Family(
        "portcullis_decisions_offload_refused",
        "Decisions refused with RESOURCE_EXHAUSTED: too many were already waiting on key managers"),
    "portcullis_cache_lookups_total": Family(
        "portcullis_cache_lookups", "Lookups in the verified-token, introspection and backend-JWT caches",
        ("cache", "result")),
    "portcullis_jwks_fetches_total": Family(
        "portcullis_jwks_fetches", "JWKS fetches, by the key managers of the JWKS", ("key_manager",)),
    "portcullis_jwks_fetch_failures_total": Family(
        "portcullis_jwks_fetch_failures", "JWKS fetches that failed (the last good keys are kept)", ("key_manager",)),
    "portcullis_introspection_requests_total": Family(
        "portcullis_introspection_requests", "RFC 7662 introspection calls", ("key_manager",)),
    "portcullis_introspection_failures_total": Family(
        "portcullis_introspection_failures", "Introspection calls that failed (unreachable, bad answer)",
        ("key_manager",)),
    "portcullis_throttle_calls_total": Family(
        "portcullis_throttle_calls",
        "Calls counted by a limit, by the limit's kind (subscription, application, api, resource) and result "
        "(allowed, refused, over_quota: allowed over a soft limit)", ("kind", "result")),
    "portcullis_throttle_store_round_trips_total": Family(
        "portcullis_throttle_store_round_trips", "Redis pipelines sent to lease quota (PORTCULLIS_REDIS_URL)"),
    "portcullis_throttle_store_errors_total": Family(
        "portcullis_throttle_store_errors", "Redis round trips and pings that failed"),
    "portcullis_throttle_store_state_changes_total": Family(
        "portcullis_throttle_store_state_changes", "Redis went down or came back (as seen by one worker; summed)"),
    "portcullis_policy_sync_reconnects_total": Family(
        "portcullis_policy_sync_reconnects", "Watch streams opened after the first, per worker", ("worker",)),
}
HISTOGRAMS = {
    "portcullis_decision_duration_seconds": (Family(
        "portcullis_decision_duration_seconds", "Server-side decision time: request parsed, decided, answer built"),
        DECISION_BUCKETS),
    "portcullis_introspection_duration_seconds": (Family(
        "portcullis_introspection_duration_seconds", "Introspection call time", ("key_manager",)), NETWORK_BUCKETS),
}
GAUGES = {
    "portcullis_policy_revision": "The change-log revision of the worker's policy index",
    "portcullis_policy_ready": "1 once the worker has its first snapshot",
    "portcullis_policy_staleness_seconds": "Seconds since the worker last heard from admin_api (an event or a heartbeat)",
    "portcullis_policy_sync_connected": "1 while the worker's Watch stream is open",
    "portcullis_policy_snapshot_duration_seconds": "How long the worker's last snapshot took, first chunk to applied",
    "portcullis_serving": "1 while gRPC health says SERVING (0: not ready, or staler than the maximum)",
    "portcullis_throttle_store_up": "1 while the worker reaches Redis for throttling, 0 while it counts locally "
                                    "(PORTCULLIS_THROTTLE_FAILURE_MODE); absent without PORTCULLIS_REDIS_URL",
}
PER_WORKER_COUNTERS = {"portcullis_policy_sync_reconnects_total"}


class FiguresCollector(Collector):
    """A prometheus-client collector that asks `figures()` on every scrape."""

    def __init__(self, figures: Callable[[], Figures]) -> None:
        self._figures = figures

    def collect(self) -> Iterator[Metric]:
        yield from render(self._figures())


def render(figures: Figures) -> Iterator[Metric]:
    for name, family in COUNTERS.items():
        if name in PER_WORKER_COUNTERS:
            continue
        metric = CounterMetricFamily(family.name, family.help, labels=family.labels)
        for labels, value in sorted(figures.counters.get(name, {}).items()):
            metric.add_metric(list(labels), value)
        yield metric
    for name, (family, bounds) in HISTOGRAMS.items():
        metric_h = HistogramMetricFamily(family.name, family.help, labels=family.labels)
        for labels, (counts, total) in sorted(figures.histograms.get(name, {}).items()):
            cumulative, buckets = 0, []
            for bound, count in zip((*map(_bound, bounds), "+Inf"), counts):
                cumulative += count
                buckets.append((bound, cumulative))
            metric_h.add_metric(list(labels), buckets, total)
        yield metric_h
    for name in PER_WORKER_COUNTERS:
        family = COUNTERS[name]
        metric = CounterMetricFamily(family.name, family.help, labels=("worker",))
        # Per worker: the carried and current figures are keyed by () and summed; keep each worker's own.
        for worker, value in sorted(figures.gauges.get(name, {}).items()):
            metric.add_metric([worker], value)
        yield metric
    for name, text in GAUGES.items():
        gauge = GaugeMetricFamily(name, text, labels=("worker",))
        for worker, value in sorted(figures.gauges.get(name, {}).items()):
            gauge.add_metric([worker], value)
        yield gauge
    up = GaugeMetricFamily("portcullis_authz_worker_up", "1 when the worker answered this scrape", labels=("worker",))
    for worker, answered in sorted(figures.workers_up.items()):
        up.add_metric([worker], 1.0 if answered else 0.0)
    yield up


def _bound(value: float) -> str:
    return repr(float(value))
