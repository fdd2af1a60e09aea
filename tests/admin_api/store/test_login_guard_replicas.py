"""Brute-force lockout counts shared by two admin_api replicas (each its own engine and
guard) on one real PostgreSQL: guesses through either replica count once each towards
one lockout, the lockout holds on both, and a success on one clears it for both; guesses
made at once through both are all counted (the row is locked per failure)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import pytest

from admin_api.app import open_store
from admin_api.login_guard import LoginGuard
from admin_api.store.unit_of_work import Store

KEY = ("user", "default", "alice")


class Clock:
    def __init__(self) -> None:
        self.now = 2_000_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def replicas(postgres_server) -> Iterator[tuple[Store, Store]]:
    url = postgres_server.create_database()
    first, second = open_store(url), open_store(url)
    yield first, second
    for store in (first, second):
        store.db.dispose()
    postgres_server.drop_database(url)


def test_guesses_through_either_replica_count_towards_one_lockout(replicas: tuple[Store, Store]) -> None:
    first, second = replicas
    clock = Clock()
    guards = [LoginGuard(5, 60.0, clock), LoginGuard(5, 60.0, clock)]   # one per replica
    verdicts = [guards[index % 2].failed((first, second)[index % 2], KEY) for index in range(5)]
    assert [verdict.failures for verdict in verdicts] == [1, 2, 3, 4, 5]
    assert verdicts[-1].locked_for == 60.0
    assert guards[0].locked(first, KEY) == 60.0 and guards[1].locked(second, KEY) == 60.0
    clock.now += 60
    assert guards[1].locked(second, KEY) == 0.0
    # The next lockout doubles, whichever replica counts it; a success on one clears both.
    assert [guards[0].failed(first, KEY).locked_for for _ in range(5)][-1] == 120.0
    guards[1].succeeded(second, KEY)
    assert guards[0].locked(first, KEY) == 0.0
    assert guards[0].failed(first, KEY).failures == 1


def test_guesses_at_once_through_both_replicas_are_all_counted(replicas: tuple[Store, Store]) -> None:
    first, second = replicas
    clock = Clock()
    guards = {id(first): LoginGuard(5, 60.0, clock), id(second): LoginGuard(5, 60.0, clock)}   # one per replica
    results: list[tuple[int, float]] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def guess(store: Store) -> None:
        start.wait()
        for _ in range(5):
            verdict = guards[id(store)].failed(store, KEY)
            with lock:
                results.append((verdict.failures, verdict.locked_for))

    threads = [threading.Thread(target=guess, args=(store,)) for store in (first, second, first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # 20 failures, 5 per lockout: four lockouts started, each count 1..5 seen four times.
    assert Counter(failures for failures, _ in results) == {n: 4 for n in range(1, 6)}
    assert sorted(locked_for for _, locked_for in results if locked_for) == [60.0, 120.0, 240.0, 480.0]
