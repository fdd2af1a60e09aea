"""Replicas that ask for a snapshot while one is being read share that read."""

import threading

import pytest

from admin_api.sync import snapshot


class _Store:
    """Only its identity matters here (the key of the shared read)."""


@pytest.fixture
def slow_load(monkeypatch):
    calls = []
    release = threading.Event()

    def fake(store):
        calls.append(store)
        release.wait(5)
        return len(calls), [f"entity-{len(calls)}"]

    monkeypatch.setattr(snapshot, "load", fake)
    return calls, release


def _in_threads(count, fn):
    results, threads = [], [threading.Thread(target=lambda: results.append(fn())) for _ in range(count)]
    for thread in threads:
        thread.start()
    return results, threads


class _CountingEvent(threading.Event):
    waiting = 0

    def wait(self, timeout=None):
        type(self).waiting += 1
        return super().wait(timeout)


def test_concurrent_replicas_share_one_read(slow_load, monkeypatch):
    calls, release = slow_load
    _CountingEvent.waiting = 0

    class CountingFlight(snapshot._Flight):
        def __init__(self):
            super().__init__()
            self.done = _CountingEvent()

    monkeypatch.setattr(snapshot, "_Flight", CountingFlight)
    store = _Store()
    results, threads = _in_threads(3, lambda: snapshot.load_shared(store))
    for _ in range(500):  # until the leader reads and both followers wait for it
        if calls and _CountingEvent.waiting == 2:
            break
        threading.Event().wait(0.01)
    release.set()
    for thread in threads:
        thread.join(5)
    assert len(calls) == 1
    assert results == [(1, ["entity-1"])] * 3


def test_a_later_replica_gets_a_fresh_read(slow_load):
    calls, release = slow_load
    release.set()
    store = _Store()
    assert snapshot.load_shared(store) == (1, ["entity-1"])
    assert snapshot.load_shared(store) == (2, ["entity-2"])  # nothing is kept after a read


def test_other_stores_do_not_share(slow_load):
    calls, release = slow_load
    release.set()
    snapshot.load_shared(_Store())
    snapshot.load_shared(_Store())
    assert len(calls) == 2


def test_a_failed_read_fails_every_waiting_replica(monkeypatch):
    started, release = threading.Event(), threading.Event()

    def failing(store):
        started.set()
        release.wait(5)
        raise RuntimeError("database gone")

    monkeypatch.setattr(snapshot, "load", failing)
    store = _Store()
    errors = []

    def call():
        try:
            snapshot.load_shared(store)
        except RuntimeError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    started.wait(5)
    threading.Event().wait(0.1)
    release.set()
    for thread in threads:
        thread.join(5)
    assert errors == ["database gone", "database gone"]
