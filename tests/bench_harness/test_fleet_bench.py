"""The fleet part of `make bench` (bench/fleet.py) works: a tiny run — one second of admin
writes per topology, Watch fan-out to 3 streams, three one-worker authz_servers, two
revocations, ready-from-cold at a thousandth of the full state. SQLite always; PostgreSQL
(one and two admin_api replicas) where Debian's postgresql package is installed. Nothing
about speed is asserted; only that each measurement measured what it meant to."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from portcullis_shared.settings import REPO_ROOT
from tests.postgres_server import find_bin_dir

# A minute when the machine is quiet; minutes when it is shared (three control planes, PostgreSQL).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

HAVE_POSTGRES = find_bin_dir() is not None


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench-fleet")
    env = {name: value for name, value in os.environ.items() if not name.startswith(("PORTCULLIS_", "BENCH_"))}
    argv = [sys.executable, "-m", "bench", "--parts", "fleet", "--seconds", "1", "--scale", "0.001",
            "--revokes", "2", "--fleet-streams", "3", "--fleet-replicas", "3", "--out", str(out),
            "--conditions", "smoke test"]
    completed = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert completed.returncode == 0, completed.stderr[-4000:]
    results = json.loads((out / "latest.json").read_text())
    assert "load average" in (out / "latest.md").read_text()
    return results["fleet"]


def _databases(rows: list[dict]) -> list[tuple[str, int]]:
    return [(row["database"], row.get("admin_replicas", row.get("replicas", 1))) for row in rows]


def test_admin_writes_on_each_topology(fleet: dict) -> None:
    expected = [("sqlite", 1)] + ([("postgresql", 1), ("postgresql", 2)] if HAVE_POSTGRES else [])
    assert _databases(fleet["admin_writes"]) == expected
    for row in fleet["admin_writes"]:
        assert row["writes"] > 0 and row["writes_per_second"] > 0 and row["p50_ms"] <= row["p99_ms"], row


def test_watch_fanout_got_every_snapshot_and_change(fleet: dict) -> None:
    rows = fleet["watch_fanout"]
    assert [row["streams"] for row in rows] == [3] * (3 if HAVE_POSTGRES else 1)
    for row in rows:
        assert row["snapshot_entities"] > 0 and 0 < row["snapshot_p50_ms"] <= row["snapshot_all_ms"], row
        assert row["changes"] == 20 and 0 < row["change_p50_ms"] <= row["change_to_every_stream_p99_ms"], row


def test_every_replica_saw_each_revocation(fleet: dict) -> None:
    rows = fleet["revoke_to_deny"]
    assert _databases(rows) == [("sqlite", 1)] + ([("postgresql", 2)] if HAVE_POSTGRES else [])
    for row in rows:
        assert row["authz_replicas"] == 3 and row["revokes"] == 2, row
        assert 0 < row["replica_p50_ms"] <= row["whole_fleet_max_ms"] and row["sweep_ms"] > 0, row


def test_ready_from_cold_on_each_database(fleet: dict) -> None:
    rows = fleet["ready_from_cold"]
    assert [row["database"] for row in rows] == ["sqlite"] + (["postgresql"] if HAVE_POSTGRES else [])
    for row in rows:
        assert row["subscriptions"] == 1000 and row["ready_seconds"] > 0 and row["rss_mib"] > 0, row
