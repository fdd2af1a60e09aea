"""The fixed-window algorithm and the shared counter table, with the clock injected."""

from __future__ import annotations

import calendar
import multiprocessing

import pytest

from authz_server.throttle.local_counting import LocalCounters
from authz_server.throttle.quota import APPLICATION, SUBSCRIPTION, Count, Quota, Verdict, admitted_under
from authz_server.throttle.shared_table import SharedTable, TableFormatError
from authz_server.throttle.windows import Unit, window_at

T0 = 1_800_000_000.0   # a minute boundary (divisible by 60)


def quota(limit: int, unit: Unit = Unit.MINUTE, *, subject: str = "s|app|api", kind: str = SUBSCRIPTION,
          stop: bool = True, burst: bool = False) -> Quota:
    return Quota(kind=kind, subject=subject, limit=limit, unit=unit, policy="p", burst=burst,
                 stop_on_quota_reach=stop)


@pytest.fixture
def counters():
    table = SharedTable.private(1024)
    yield LocalCounters(table)
    table.close()


@pytest.mark.parametrize("unit, now, start, end", [
    (Unit.SECOND, T0 + 0.5, T0, T0 + 1),
    (Unit.MINUTE, T0 + 59.9, T0, T0 + 60),
    (Unit.HOUR, T0 + 10, T0 - T0 % 3600, T0 - T0 % 3600 + 3600),
    (Unit.DAY, calendar.timegm((2026, 12, 1, 23, 59, 59)), calendar.timegm((2026, 12, 1, 0, 0, 0)),
     calendar.timegm((2026, 12, 2, 0, 0, 0))),
    (Unit.MONTH, calendar.timegm((2026, 12, 31, 12, 0, 0)), calendar.timegm((2026, 12, 1, 0, 0, 0)),
     calendar.timegm((2027, 1, 1, 0, 0, 0))),
    (Unit.MONTH, calendar.timegm((2028, 2, 29, 0, 0, 0)), calendar.timegm((2028, 2, 1, 0, 0, 0)),
     calendar.timegm((2028, 3, 1, 0, 0, 0))),
], ids=["second", "minute", "hour", "day-utc", "month-december", "month-leap-february"])
def test_windows_are_aligned_to_the_utc_clock(unit, now, start, end):
    window = window_at(unit, now)
    assert (window.start, window.end) == (start, end)
    assert window.start <= now < window.end


def test_retry_after_is_the_whole_seconds_left_and_at_least_one():
    window = window_at(Unit.MINUTE, T0 + 12.3)
    assert window.reset_after(T0 + 12.3) == 48
    assert window.reset_after(T0 + 59.99) == 1


def test_a_limit_admits_exactly_its_count_then_refuses_until_the_next_window(counters):
    five = quota(5)
    admitted = [counters.take([five], T0 + i).allowed for i in range(8)]
    assert admitted == [True] * 5 + [False] * 3
    refused = counters.take([five], T0 + 59.5)
    assert refused.refused_by.quota is five and refused.refused_by.remaining == 0
    assert refused.refused_by.window.reset_after(T0 + 59.5) == 1
    assert counters.take([five], T0 + 60).allowed          # a new window


def test_the_fast_verdict_of_one_admitted_call_is_the_plain_one():
    five, window = quota(5), window_at(Unit.MINUTE, T0)
    fast, plain = admitted_under(five, 3, window), Verdict((Count(five, 3, window),))
    assert fast == plain and type(fast) is Verdict and type(fast.counts[0]) is Count
    assert fast.allowed and fast.refused_by is None and fast.over == () and fast.store_unavailable is False


def test_remaining_counts_down(counters):
    three = quota(3)
    assert [counters.take([three], T0).counts[0].remaining for _ in range(3)] == [2, 1, 0]


def test_a_refused_call_uses_up_none_of_the_other_limits(counters):
    roomy, tight = quota(100, subject="a|app", kind=APPLICATION), quota(1)
    assert counters.take([roomy, tight], T0).allowed
    for _ in range(10):
        verdict = counters.take([roomy, tight], T0)
        assert verdict.refused_by.quota is tight
    assert counters.take([roomy], T0).counts[0].remaining == 98   # only the admitted call counted


def test_the_first_exceeded_limit_decides(counters):
    first, second = quota(1, subject="r|x", kind="resource"), quota(1, subject="a|app", kind=APPLICATION)
    counters.take([first, second], T0)
    assert counters.take([first, second], T0).refused_by.quota is first


def test_stop_on_quota_reach_false_admits_and_says_over(counters):
    soft = quota(2, stop=False)
    verdicts = [counters.take([soft], T0) for _ in range(4)]
    assert all(v.allowed for v in verdicts)
    assert [bool(v.over) for v in verdicts] == [False, False, True, True]


def test_a_tier_change_keeps_the_count_and_applies_the_new_limit_at_once(counters):
    for _ in range(5):
        counters.take([quota(5)], T0)
    assert not counters.take([quota(5)], T0).allowed
    assert counters.take([quota(10)], T0).allowed              # raised: 5 more
    assert counters.take([quota(10)], T0).counts[0].remaining == 3
    assert not counters.take([quota(2)], T0).allowed           # lowered below the count: refused at once


def test_burst_and_main_limits_count_apart(counters):
    main, burst = quota(100), quota(2, Unit.SECOND, burst=True)
    assert [counters.take([main, burst], T0).allowed for _ in range(3)] == [True, True, False]
    assert counters.take([main, burst], T0 + 1).allowed
    assert counters.take([main], T0 + 1).counts[0].remaining == 96


def test_a_full_table_still_counts_and_reuses_ended_windows():
    table = SharedTable.private(4)
    counters = LocalCounters(table)
    try:
        many = [quota(1, subject=f"s|{i}|x") for i in range(40)]
        assert all(counters.take([q], T0).allowed for q in many)
        assert not any(counters.take([q], T0).allowed for q in many)   # overflow counts too
        fresh = quota(1, subject="s|fresh|x")
        assert counters.take([fresh], T0 + 60).allowed                 # slots of ended windows are free again
        assert not counters.take([fresh], T0 + 60).allowed
    finally:
        table.close()


def test_open_refuses_a_file_that_is_not_a_table(tmp_path):
    path = tmp_path / "not-a-table"
    path.write_bytes(b"x" * 128)
    with pytest.raises(TableFormatError):
        SharedTable.open(str(path))


def _hammer(path: str, limit: int, calls: int, now: float, start, results) -> None:
    table = SharedTable.open(path)
    counters = LocalCounters(table)
    five = quota(limit)
    start.wait(30)
    results.put(sum(counters.take([five], now).allowed for _ in range(calls)))
    table.close()


def test_workers_sharing_the_table_admit_exactly_the_limit_between_them(tmp_path):
    """Four processes at once on one counter of 1000: exactly 1000 admitted in all."""
    path = str(tmp_path / "counters")
    SharedTable.create(path, 256).close()
    context = multiprocessing.get_context("spawn")
    results, start = context.Queue(), context.Event()
    processes = [context.Process(target=_hammer, args=(path, 1000, 600, T0, start, results)) for _ in range(4)]
    for process in processes:
        process.start()
    start.set()
    admitted = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    assert sum(admitted) == 1000
