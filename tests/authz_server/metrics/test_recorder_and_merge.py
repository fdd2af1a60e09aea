"""The metrics core: plain-int recording, merging workers (restarts, the bounded api
label), the supervisor's socket pair, and the page prometheus-client renders."""

from __future__ import annotations

import socket
import threading

from prometheus_client.parser import text_string_to_metric_families

from authz_server.metrics.channel import SupervisorEnd, WorkerEnd
from authz_server.metrics.exposition import render
from authz_server.metrics.merge import OTHER_API, Merger
from authz_server.metrics.recorder import ProcessMetrics
from authz_server.metrics.snapshot import NO_API, WorkerSnapshotter


class _Api:
    def __init__(self, name: str) -> None:
        self.name, self.version = name, "1.0.0"


class _Index:
    def __init__(self, apis: dict[str, str]) -> None:
        self.apis = {api_id: _Api(name) for api_id, name in apis.items()}
        self.key_managers: dict = {}


def _snapshot(recorder: ProcessMetrics, apis: dict[str, str], pid: int) -> dict:
    snap = WorkerSnapshotter(recorder, lambda: _Index(apis)).snapshot()
    snap["pid"] = pid
    return snap


def _decisions(figures) -> dict:
    return figures.counters["portcullis_decisions_total"]


def test_decisions_are_counted_per_label_set_and_named_from_the_index() -> None:
    recorder = ProcessMetrics()
    recorder.decision("allow", "allowed", "a1", "api_key", 0.00004)
    recorder.decision("allow", "allowed", "a1", "api_key", 0.00006)
    recorder.decision("deny", "api_not_found", "", "none", 0.00002)
    figures = Merger().merge([(0, _snapshot(recorder, {"a1": "Pizza"}, 1))])
    assert _decisions(figures) == {("allow", "allowed", "Pizza/1.0.0", "api_key"): 2,
                                   ("deny", "api_not_found", NO_API, "none"): 1}
    counts, total = figures.histograms["portcullis_decision_duration_seconds"][()]
    assert sum(counts) == 3 and abs(total - 0.00012) < 1e-12


def test_a_disabled_recorder_counts_nothing() -> None:
    recorder = ProcessMetrics()
    recorder.enabled = False
    recorder.decision("allow", "allowed", "a1", "api_key", 0.001)
    recorder.cache_lookup("verified_token", True)
    assert recorder.decisions == {} and recorder.cache == {} and sum(recorder.decision_seconds.counts) == 0


def test_workers_are_summed_and_a_restarted_worker_never_makes_a_counter_go_down() -> None:
    merger, first, second = Merger(), ProcessMetrics(), ProcessMetrics()
    for _ in range(3):
        first.decision("allow", "allowed", "a1", "api_key", 0.0001)
    second.decision("allow", "allowed", "a1", "api_key", 0.0001)
    key = ("allow", "allowed", "Pizza/1.0.0", "api_key")
    apis = {"a1": "Pizza"}
    assert _decisions(merger.merge([(0, _snapshot(first, apis, 10)), (1, _snapshot(second, apis, 11))]))[key] == 4
    # Worker 0 restarts (a new pid, counting from zero again): its earlier 3 are carried.
    restarted = ProcessMetrics()
    restarted.decision("allow", "allowed", "a1", "api_key", 0.0001)
    figures = merger.merge([(0, _snapshot(restarted, apis, 12)), (1, _snapshot(second, apis, 11))])
    assert _decisions(figures)[key] == 5
    # A worker that does not answer keeps its last figures and is reported down.
    figures = merger.merge([(0, None), (1, _snapshot(second, apis, 11))])
    assert _decisions(figures)[key] == 5
    assert figures.workers_up == {"0": False, "1": True}


def test_the_api_label_is_bounded_and_stays_where_it_was_first_counted() -> None:
    merger, recorder = Merger(max_apis=2), ProcessMetrics()
    apis = {f"a{i}": f"Api{i}" for i in range(5)}
    for i in range(3):
        recorder.decision("deny", "credential_missing", f"a{i}", "none", 0.0001)
    recorder.decision("deny", "api_not_found", "", "none", 0.0001)
    labels = {key[2] for key in _decisions(merger.merge([(0, _snapshot(recorder, apis, 1))]))}
    assert labels == {"Api0/1.0.0", "Api1/1.0.0", OTHER_API, NO_API}
    # A later, busier API does not take a label away from the admitted ones (counters stay monotonic).
    for _ in range(10):
        recorder.decision("allow", "allowed", "a4", "api_key", 0.0001)
    decisions = _decisions(merger.merge([(0, _snapshot(recorder, apis, 1))]))
    assert {key[2] for key in decisions} == labels
    assert decisions[("allow", "allowed", OTHER_API, "api_key")] == 10


def test_the_rendered_page_parses_as_prometheus_text() -> None:
    recorder = ProcessMetrics()
    recorder.decision("deny", "token_expired", "a1", "oauth2", 0.0003)
    recorder.introspection("km1", 0.02, failed=True)
    from prometheus_client import CollectorRegistry, generate_latest
    from authz_server.metrics.exposition import FiguresCollector

    figures = Merger().merge([(0, _snapshot(recorder, {"a1": "Pizza"}, 1))])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FiguresCollector(lambda: figures))
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}
    (sample,) = [s for s in families["portcullis_decisions"].samples if s.name == "portcullis_decisions_total"]
    assert sample.labels == {"outcome": "deny", "reason": "token_expired", "api": "Pizza/1.0.0", "credential": "oauth2"}
    buckets = [s for s in families["portcullis_decision_duration_seconds"].samples if s.name.endswith("_bucket")]
    assert buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == 1
    assert [s.value for s in families["portcullis_introspection_failures"].samples
            if s.name.endswith("_total")] == [1]
    assert list(render(figures))  # every family renders, also the empty ones


def test_the_socket_pair_answers_each_question_and_skips_a_late_answer() -> None:
    ours, theirs = SupervisorEnd.pair()
    release, calls = threading.Event(), []

    def snapshot() -> dict:
        calls.append(1)
        if len(calls) == 1:
            release.wait(5)   # the first answer comes after the supervisor gave up on it
        return {"pid": 1, "n": len(calls)}

    end = WorkerEnd(socket.socket(fileno=theirs.detach()), snapshot)
    end.start()
    worker = end._thread
    assert ours.ask(timeout=0.2) is None
    release.set()
    assert ours.ask(timeout=5.0) == {"pid": 1, "n": 2}
    ours.close()
    worker.join(timeout=5)


def test_throttling_figures_are_summed_over_workers_and_redis_state_is_per_worker() -> None:
    from collections import Counter

    from prometheus_client import CollectorRegistry, generate_latest

    from authz_server.metrics.exposition import FiguresCollector
    from authz_server.throttle.stats import ThrottleStats

    def worker(pid: int, allowed: int, refused: int, state: str, errors: int) -> dict:
        stats = ThrottleStats(allowed=Counter(subscription=allowed, application=allowed),
                              refused=Counter(subscription=refused), over_quota=Counter(api=1),
                              store_state=state, store_state_changes=errors, lease_round_trips=10, store_errors=errors)
        snap = WorkerSnapshotter(ProcessMetrics(), lambda: None, throttle=stats.snapshot).snapshot()
        snap["pid"] = pid
        return snap

    figures = Merger().merge([(0, worker(1, 5, 2, "up", 0)), (1, worker(2, 3, 1, "down", 4))])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FiguresCollector(lambda: figures))
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}
    calls = {(s.labels["kind"], s.labels["result"]): s.value for s in families["portcullis_throttle_calls"].samples
             if s.name.endswith("_total")}
    assert calls == {("subscription", "allowed"): 8, ("application", "allowed"): 8, ("subscription", "refused"): 3,
                     ("api", "over_quota"): 2}
    assert [s.value for s in families["portcullis_throttle_store_round_trips"].samples if s.name.endswith("_total")] == [20]
    assert [s.value for s in families["portcullis_throttle_store_errors"].samples if s.name.endswith("_total")] == [4]
    assert {s.labels["worker"]: s.value for s in families["portcullis_throttle_store_up"].samples} == {"0": 1, "1": 0}


def test_without_redis_there_is_no_store_gauge() -> None:
    from authz_server.throttle.stats import ThrottleStats

    snap = WorkerSnapshotter(ProcessMetrics(), lambda: None, throttle=ThrottleStats().snapshot).snapshot()
    assert "portcullis_throttle_store_up" not in snap["gauges"]
    assert snap["counters"]["portcullis_throttle_calls_total"] == []
