"""`python -m bench.transports` measures Envoy -> authz_server over h2c on TCP, a Unix socket
and mTLS in one run (nothing about speed is asserted: only that every hop carried
authz_server's decisions and no request failed)."""

from __future__ import annotations

import pytest

from bench import e2e, transports

pytestmark = pytest.mark.integration


@pytest.mark.skipif(not e2e.have_wrk(), reason="wrk is not installed (make bench-tools installs it)")
def test_tcp_unix_socket_and_mtls_side_by_side_through_envoy() -> None:
    result = transports.run(seconds=1, rounds=1, connections=4)
    rows = {row["mode"]: row for row in result["rows"]}
    assert set(rows) == {"tcp", "uds", "mtls"}
    for row in rows.values():
        assert row["rps"] > 0 and row["non_404"] == 0 and row["socket_errors"] == 0, row
    assert set(result["vs_tcp"]) == {"uds", "mtls"}
    header = {"date": "today", "commit": "x", "machine": "m", "conditions": "smoke test"}
    assert "| uds |" in transports.markdown(result, header)
