"""A worker's figures as one plain, JSON-ready value: what the supervisor merges.

Names come from the worker's current index here (api ids -> "name/version", key manager
ids and JWKS URIs -> key manager names), so the supervisor needs neither the index nor
grpc. A name is remembered once seen, so an API deleted since keeps its label.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from authz_server.metrics.recorder import ProcessMetrics
from authz_server.throttle import stats as throttle_stats

NO_API = "none"   # no API matched (api_not_found, bad_request, policy_not_ready)

Snapshot = dict[str, Any]


@dataclass
class SyncView:
    """What the sync client and the health know, read at scrape time."""

    revision: Callable[[], int]
    ready: Callable[[], bool]
    staleness_seconds: Callable[[], float]       # since the last Watch event or heartbeat
    connected: Callable[[], bool]
    reconnects: Callable[[], int]
    snapshot_seconds: Callable[[], float]        # the last snapshot, SnapshotBegin to applied
    serving: Callable[[], bool] = lambda: True   # gRPC health (False: NOT_SERVING, stale)


@dataclass
class WorkerSnapshotter:
    recorder: ProcessMetrics
    index: Callable[[], Any]                      # the PolicyIndex in force, or None
    sync: SyncView | None = None
    worker: int = 0
    throttle: Callable[[], dict[str, Any]] = throttle_stats.snapshot   # this process's throttling figures
    _api_names: dict[str, str] = field(default_factory=dict)
    _key_manager_names: dict[str, str] = field(default_factory=dict)
    _source_names: dict[str, str] = field(default_factory=dict)

    def snapshot(self) -> Snapshot:
        self._learn_names()
        r = self.recorder
        counters: dict[str, list[list[Any]]] = {
            "portcullis_decisions_total": [
                [[outcome, reason, self._api(api_id), credential], n]
                for (outcome, reason, api_id, credential), n in list(r.decisions.items())],
            "portcullis_decisions_offloaded_total": [[[], r.offloaded]],
            "portcullis_decisions_offload_refused_total": [[[], r.offload_refused]],
            "portcullis_cache_lookups_total": [[[cache, result], n] for (cache, result), n in list(r.cache.items())],
            "portcullis_jwks_fetches_total": [[[self._source(s)], n] for s, n in list(r.jwks_fetches.items())],
            "portcullis_jwks_fetch_failures_total": [[[self._source(s)], n] for s, n in list(r.jwks_failures.items())],
            "portcullis_introspection_requests_total": [
                [[self._key_manager(k)], n] for k, n in list(r.introspection_calls.items())],
            "portcullis_introspection_failures_total": [
                [[self._key_manager(k)], n] for k, n in list(r.introspection_failures.items())],
        }
        histograms = {
            "portcullis_decision_duration_seconds": [[[], *r.decision_seconds.snapshot()]],
            "portcullis_introspection_duration_seconds": [
                [[self._key_manager(k)], *h.snapshot()] for k, h in list(r.introspection_seconds.items())],
        }
        gauges: dict[str, float] = {}
        sync = self.sync
        if sync is not None:
            gauges = {
                # A counter, but per worker (a restarted worker's Watch starts afresh).
                "portcullis_policy_sync_reconnects_total": sync.reconnects(),
                "portcullis_policy_revision": sync.revision(),
                "portcullis_policy_ready": 1.0 if sync.ready() else 0.0,
                "portcullis_policy_staleness_seconds": sync.staleness_seconds(),
                "portcullis_policy_sync_connected": 1.0 if sync.connected() else 0.0,
                "portcullis_policy_snapshot_duration_seconds": sync.snapshot_seconds(),
                "portcullis_serving": 1.0 if sync.serving() else 0.0,
            }
        throttled = self.throttle()
        counters.update(throttle_counters(throttled))
        if throttled["store_state"] != throttle_stats.STORE_OFF:
            gauges["portcullis_throttle_store_up"] = 1.0 if throttled["store_state"] == throttle_stats.STORE_UP else 0.0
        return {"pid": os.getpid(), "worker": self.worker, "time": time.time(),
                "counters": counters, "histograms": histograms, "gauges": gauges}

    def _learn_names(self) -> None:
        index = self.index()
        if index is None:
            return
        for api_id in {key[2] for key in list(self.recorder.decisions)}:
            if api_id and api_id not in self._api_names:
                api = index.apis.get(api_id)
                if api is not None:
                    self._api_names[api_id] = f"{api.name}/{api.version}"
        for key_manager in index.key_managers.values():
            self._key_manager_names[key_manager.id] = key_manager.name
            uri = key_manager.key_source.jwks_uri
            if not uri:
                continue   # a certificate is never fetched
            known = self._source_names.get(uri)
            if known is None:
                self._source_names[uri] = key_manager.name
            elif key_manager.name not in known.split(","):
                # Key managers sharing a JWKS share its fetches: the label names them all.
                self._source_names[uri] = ",".join(sorted({*known.split(","), key_manager.name}))

    def _api(self, api_id: str) -> str:
        if not api_id:
            return NO_API
        return self._api_names.get(api_id, api_id)

    def _key_manager(self, key_manager_id: str) -> str:
        return self._key_manager_names.get(key_manager_id, key_manager_id)

    def _source(self, uri: str) -> str:
        return self._source_names.get(uri, uri)


def throttle_counters(throttled: dict[str, Any]) -> dict[str, list[list[Any]]]:
    """The throttle stage's figures (authz_server.throttle.stats) as counter series."""
    calls = [[[kind, result], n] for result in ("allowed", "refused", "over_quota")
             for kind, n in sorted(throttled[result].items())]
    return {
        "portcullis_throttle_calls_total": calls,
        "portcullis_throttle_store_round_trips_total": [[[], throttled["lease_round_trips"]]],
        "portcullis_throttle_store_errors_total": [[[], throttled["store_errors"]]],
        "portcullis_throttle_store_state_changes_total": [[[], throttled["store_state_changes"]]],
    }
