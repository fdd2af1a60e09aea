"""bench/call_cost.py works: each case answers allowed calls through the native front
end's connection (it checks the answers itself), and its CPU figure is measured. Nothing
about speed is asserted; callgrind runs only in `make bench`."""

from __future__ import annotations

import pytest

from bench import call_cost


@pytest.mark.parametrize("name", call_cost.CASES)
def test_each_case_answers_allowed_calls(name: str) -> None:
    run, close = call_cost.prepared(name, 20, warm=5)
    run()
    close()   # asserts one answer per call, the last one OK with the backend JWT header


def test_cpu_figure_is_measured() -> None:
    figures = call_cost.run(calls=10, cases=("constant", "api_key"), with_callgrind=False)
    assert all(each["cpu_us_per_call"] > 0 for each in figures["cases"].values())


def test_unknown_case_is_refused() -> None:
    with pytest.raises(ValueError):
        call_cost.build_case("nothing")
