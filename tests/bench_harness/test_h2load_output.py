"""Parsing h2load's summary: it prints the run's duration in whichever unit fits, so a
one-second smoke run that ends a hair early reads "997.98ms", not "0.99798s"."""

from __future__ import annotations

import pytest

from bench.load import _FINISHED, _SECONDS_PER_UNIT


@pytest.mark.parametrize(("line", "seconds"), [
    pytest.param("finished in 5.00s, 9150.60 req/s, 3.73MB/s", 5.0, id="seconds"),
    pytest.param("finished in 997.98ms, 2478.00 req/s, 1.01MB/s", 0.99798, id="milliseconds"),
    pytest.param("finished in 850us, 1.00 req/s, 1KB/s", 0.00085, id="microseconds"),
])
def test_finished_line_gives_seconds_whatever_the_unit(line: str, seconds: float) -> None:
    match = _FINISHED.search(line)
    assert match is not None
    assert float(match.group(1)) * _SECONDS_PER_UNIT[match.group(2)] == pytest.approx(seconds)
