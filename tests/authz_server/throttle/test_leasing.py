"""Quota leased from a real Redis: exact across replicas, never waiting inline, and the
failure modes while Redis is away."""

from __future__ import annotations

import threading
import time

import pytest

from authz_server import offload
from authz_server.throttle.leasing import LeasedCounters, lease_size
from authz_server.throttle.quota import SUBSCRIPTION, Quota
from authz_server.throttle.redis_store import RedisQuotaStore
from authz_server.throttle.shared_table import SharedTable
from authz_server.throttle.stats import STORE_DOWN, STORE_UP, ThrottleStats
from authz_server.throttle.windows import Unit

T0 = 1_800_000_000.0


def quota(limit: int, unit: Unit = Unit.HOUR, subject: str = "s|app|api") -> Quota:
    return Quota(kind=SUBSCRIPTION, subject=subject, limit=limit, unit=unit, policy="p")


class Replica:
    """One authz_server's counters: its own table, its own Redis client."""

    def __init__(self, url: str, mode: str = "open", clock=lambda: T0) -> None:
        self.table = SharedTable.private(256)
        self.stats = ThrottleStats()
        self.counters = LeasedCounters(self.table, RedisQuotaStore(url, timeout=0.2), failure_mode=mode,
                                       clock=clock, stats=self.stats)
        self.counters.start()

    def take(self, q: Quota, now: float = T0):
        return self.counters.take([q], now)

    def close(self) -> None:
        self.counters.stop()
        self.table.close()


@pytest.fixture
def replicas(redis_server):
    made: list[Replica] = []

    def make(mode: str = "open", clock=lambda: T0) -> Replica:
        made.append(Replica(redis_server.url, mode, clock))
        return made[-1]

    yield make
    for replica in made:
        replica.close()


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def test_lease_sizes_are_one_percent_and_at_least_one():
    assert [lease_size(n) for n in (1, 5, 99, 100, 5000)] == [1, 1, 1, 1, 50]


def test_a_call_without_a_lease_moves_off_the_loop_before_counting(replicas, redis_server):
    replica = replicas()
    five = quota(5)
    with offload.inline(), pytest.raises(offload.WouldBlock):
        replica.take(five)
    assert redis_server.client().keys("portcullis:throttle:*") == []     # nothing asked, nothing counted
    assert replica.take(five).allowed                                     # on a thread: asks Redis


def test_a_steady_caller_is_decided_inline_from_leases_refilled_in_the_background(replicas):
    replica = replicas()
    big = quota(100_000)                              # leases of 1000, fetched ahead at 500 left
    assert replica.take(big).allowed
    moved = 0
    for _ in range(5000):
        try:
            with offload.inline():
                assert replica.take(big).allowed
        except offload.WouldBlock:                    # the refill was late: the call goes to a thread
            moved += 1
            assert replica.take(big).allowed
    assert moved <= 50                                # (on a quiet machine: 0)
    assert replica.stats.lease_round_trips >= 5


def test_two_replicas_admit_exactly_the_limit_between_them(replicas):
    a, b = replicas(), replicas()
    five = quota(5)
    results = [r.take(five).allowed for r in (a, b, a, b, b, a, a, b)]
    assert results.count(True) == 5
    assert results[:5] == [True] * 5


def test_replicas_under_concurrent_load_stay_within_the_bound(replicas):
    limit = 2000
    group = [replicas(), replicas()]
    admitted = [0, 0]
    q = quota(limit)

    def hammer(slot: int, replica: Replica) -> None:
        for _ in range(1600):
            admitted[slot] += replica.take(q).allowed

    threads = [threading.Thread(target=hammer, args=(i, r)) for i, r in enumerate(group)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    total = sum(admitted)
    assert 0.95 * limit <= total <= limit + max(1, limit // 100)


def test_a_restarted_replica_continues_the_count_of_a_long_window(replicas):
    daily = quota(3, Unit.DAY)
    first = replicas()
    assert [first.take(daily).allowed for _ in range(2)] == [True, True]
    first.close()
    again = replicas()                                    # a fresh process: empty table
    assert [again.take(daily).allowed for _ in range(2)] == [True, False]


def test_a_raised_limit_applies_at_once_after_exhaustion(replicas):
    replica = replicas()
    assert [replica.take(quota(2)).allowed for _ in range(3)] == [True, True, False]
    assert replica.take(quota(4)).allowed


def test_redis_away_open_counts_locally_then_recovers(replicas, redis_server):
    replica = replicas("open")
    q = quota(3)
    assert replica.take(q).allowed
    redis_server.kill()
    verdicts = [replica.take(q) for _ in range(4)]       # each decided without Redis
    assert [v.allowed for v in verdicts] == [True, True, False, False]
    assert replica.stats.store_state == STORE_DOWN and replica.stats.store_state_changes == 1
    redis_server.start()
    wait_for(lambda: replica.stats.store_state == STORE_UP)
    fresh = quota(3, subject="s|other|api")
    assert replica.take(fresh).allowed and replica.stats.lease_round_trips >= 2


def test_redis_away_closed_spends_leases_then_refuses(replicas, redis_server):
    replica = replicas("closed")
    q = quota(500)                                       # leases of 5
    assert replica.take(q).allowed
    redis_server.kill()
    outcomes = [replica.take(q) for _ in range(8)]
    allowed = [v.allowed for v in outcomes]
    assert allowed[0] and not allowed[-1]
    assert 1 <= allowed.count(True) <= lease_size(500)
    assert outcomes[-1].store_unavailable


def test_a_slow_redis_never_holds_the_inline_loop(replicas, redis_server):
    replica = replicas()
    q = quota(10)
    redis_server.process.send_signal(19)                 # SIGSTOP: connections hang
    try:
        started = time.perf_counter()
        with offload.inline(), pytest.raises(offload.WouldBlock):
            replica.take(q)
        assert time.perf_counter() - started < 0.1       # moved, not waited
        verdict = replica.take(q)                         # on a thread: bounded by the 0.2 s timeout
        assert verdict.allowed and replica.stats.store_state == STORE_DOWN
    finally:
        redis_server.process.send_signal(18)             # SIGCONT
