"""admin_api's Prometheus figures, served at GET /metrics on the REST port (no credential,
like /healthz: counts, method names and revisions only, never an id, key or token).

Counters live for the process (one admin_api per process); `registry_for(...)` builds the
registry one REST app serves, adding the gauges read from that app's store and streams at
scrape time. Label values come from closed sets (RPC names, gRPC codes, known grant
types, OAuth2 error codes), never from a client's free text.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

RPCS = Counter("portcullis_admin_rpcs", "Admin RPCs (gRPC and REST) by method and gRPC status code",
               ("method", "code"), registry=None)
RPC_SECONDS = Histogram("portcullis_admin_rpc_duration_seconds", "Admin RPC time, by method", ("method",),
                        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
                        registry=None)
AUDIT_RECORDS = Counter("portcullis_admin_audit_records", "Audit records committed, by outcome", ("outcome",),
                        registry=None)
TOKEN_REQUESTS = Counter("portcullis_admin_oauth2_token_requests",
                         "Resident key manager /oauth2/token requests by grant type and outcome",
                         ("grant_type", "outcome"), registry=None)
_PROCESS_COUNTERS = (RPCS, RPC_SECONDS, AUDIT_RECORDS, TOKEN_REQUESTS)

GRANT_TYPES = frozenset({"client_credentials", "password", "refresh_token", "authorization_code"})
OAUTH_ERRORS = frozenset({"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                          "unsupported_grant_type", "invalid_scope", "server_error", "access_denied"})


def count_token_request(grant_type: str | None, status: int, body: object) -> None:
    grant = grant_type if grant_type in GRANT_TYPES else "other"
    if status == 200:
        outcome = "issued"
    else:
        error = body.get("error") if isinstance(body, dict) else None
        outcome = error if error in OAUTH_ERRORS else "error"
    TOKEN_REQUESTS.labels(grant, outcome).inc()


class StreamCount:
    """Streams open now (Watch, xDS), counted by the servicer that holds them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.open = 0
        self.total = 0

    def opened(self) -> None:
        with self._lock:
            self.open += 1
            self.total += 1

    def closed(self) -> None:
        with self._lock:
            self.open -= 1


WATCH_STREAMS = StreamCount()


class _Process(Collector):
    def collect(self) -> Iterator[Metric]:
        for metric in _PROCESS_COUNTERS:
            yield from metric.collect()


class _Live(Collector):
    """Gauges read when scraped: `gauges()` gives (name, help, [(labels, value), ...])."""

    def __init__(self, gauges: Callable[[], list[tuple[str, str, dict[str, str], float]]]) -> None:
        self._gauges = gauges

    def collect(self) -> Iterator[Metric]:
        families: dict[str, GaugeMetricFamily] = {}
        for name, text, labels, value in self._gauges():
            family = families.get(name)
            if family is None:
                family = families[name] = GaugeMetricFamily(name, text, labels=sorted(labels))
            family.add_metric([labels[key] for key in sorted(labels)], value)
        yield from families.values()


def registry_for(revision: Callable[[], int] | None = None,
                 extra: Callable[[], list[tuple[str, str, dict[str, str], float]]] = lambda: []) -> CollectorRegistry:
    """What one REST app's /metrics serves: the process's counters and this app's gauges
    (`revision()` reads the change log; None: an app without a store, e.g. in tests)."""

    def gauges() -> list[tuple[str, str, dict[str, str], float]]:
        live = [("portcullis_admin_watch_streams", "PolicySync Watch streams open now", {}, float(WATCH_STREAMS.open))]
        if revision is not None:
            live.append(("portcullis_admin_change_log_revision", "The newest revision in the change log", {},
                         float(revision())))
        return [*live, *extra()]

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Process())
    registry.register(_Live(gauges))
    return registry
