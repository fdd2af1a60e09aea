"""`python -m bench.tls_frontend` measures both transports of the native front end in one
run (nothing about speed is asserted: only that each side answered every call)."""

from __future__ import annotations

import pytest

from bench import load, tls_frontend

pytestmark = pytest.mark.integration


@pytest.mark.skipif(not load.have_h2load(), reason="h2load is not installed (make bench installs it)")
def test_h2c_and_tls_side_by_side() -> None:
    result = tls_frontend.run(seconds=1, rounds=1)
    rows = {row["mode"]: row for row in result["rows"]}
    assert set(rows) == {"h2c", "tls"}
    for row in rows.values():
        assert row["rps"] > 0 and row["failed"] == 0, row
    assert result["tls_vs_h2c"]["cpu_per_call_ratio"] is not None
    assert "| tls |" in tls_frontend.markdown(result, "smoke test")
