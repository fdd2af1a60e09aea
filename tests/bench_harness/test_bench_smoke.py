"""The benchmark harness itself works (`make bench`): a tiny run of every part — a real mesh,
a few Check load runs of a second, the three Envoy gateways when wrk is installed, and a
scale run at a thousandth of the full state with two revocations. Nothing about speed is
asserted; only that each part measured what it meant to (allowed requests, no errors)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.e2e import have_wrk
from portcullis_shared.settings import REPO_ROOT

# One `make bench` run at tiny scale is set up by the first test: above pytest's default
# 120 s on a loaded 2-core machine.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench-results")
    env = {name: value for name, value in os.environ.items() if not name.startswith(("PORTCULLIS_", "BENCH_"))}
    # The fleet and transports parts have smoke tests of their own (test_fleet_bench.py,
    # test_transports.py).
    argv = [sys.executable, "-m", "bench", "--parts", "direct,e2e,scale,xds",
            "--seconds", "1", "--scale", "0.001", "--revokes", "2",
            "--xds-apis", "200", "--publishes", "3",
            "--scenarios", "anonymous,api_key,jwt_cached,jwt_first_sight", "--out", str(out),
            "--conditions", "smoke test", "--no-callgrind", "--e2e-throttle-pairs", "1"]
    completed = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert (out / "latest.md").read_text().startswith("# Portcullis benchmark results")
    return json.loads((out / "latest.json").read_text())


def test_direct_runs_measured_allowed_decisions(results):
    rows = {row["scenario"]: row for row in results["direct"]}
    assert set(rows) == {"anonymous", "api_key", "jwt_cached", "jwt_first_sight"}
    for row in rows.values():
        assert row["requests"] > 0 and row["failed"] == 0, row
        assert row["server_cpu_us_per_decision"] > 0, row
        assert row["p50_ms"] <= row["p99_ms"] <= row["p999_ms"], row


def test_whole_calls_measured_in_process(results):
    cases = results["call_cost"]["cases"]
    assert set(cases) == {"constant", "anonymous", "api_key", "api_key_counted", "jwt_cached", "jwt_cached_counted",
                          "jwt_first_sight"}
    assert all(each["cpu_us_per_call"] > 0 for each in cases.values()), cases


@pytest.mark.skipif(not have_wrk(), reason="wrk is not installed (make bench installs it)")
def test_end_to_end_compares_the_gateways(results):
    e2e = results["e2e"]
    for gateway in ("none", "jwt_authn", "portcullis", "portcullis_half_load", "ext_authz_floor",
                    "ext_authz_floor_half_load"):
        assert e2e[gateway]["requests"] > 0 and e2e[gateway]["non_2xx"] == 0, e2e[gateway]
    assert e2e["portcullis"]["authz_cpu_seconds"] > 0
    assert e2e["ext_authz_floor"]["authz_cpu_seconds"] > 0   # measured on the constant server, not authz_server
    assert e2e["ratio_portcullis_to_jwt_authn"] > 0 and e2e["ratio_floor_to_jwt_authn"] > 0
    assert e2e["ratio_portcullis_to_floor"] > 0
    # The floor is paced at the rate (c) was, not at half of its own peak.
    assert e2e["ext_authz_floor_half_load"]["target_rps"] == e2e["portcullis_half_load"]["target_rps"]


def test_scale_synced_measured_and_saw_the_revocations(results):
    scale = results["scale"]
    assert scale["api_keys"] == scale["subscriptions"] + 1 >= 1000
    assert scale["ready_seconds"] > 0 and scale["rss_total_bytes"] > 0
    assert scale["revokes"] == 2 and scale["revoke_p99_ms"] > 0


def test_targets_are_reported_against_the_measurements(results):
    names = [check["target"] for check in results["targets"]]
    assert any("revoke-to-deny" in name for name in names)
    assert all(isinstance(check["met"], bool) for check in results["targets"])


def test_xds_measured_publishes_and_a_push(results):
    xds = results["xds"]
    assert xds["publish_to_first_200"]["publishes"] == 3 and xds["publish_to_first_200"]["p50_ms"] > 0
    scale = xds["scale"]
    assert scale["apis"] == 200 and scale["clusters"] == 400
    assert scale["new_envoy_to_live_s"] > 0 and scale["envoy_rss_mib"] > 0 and scale["one_change_to_ack_s"] > 0


@pytest.mark.skipif(not have_wrk(), reason="wrk is not installed (make bench installs it)")
def test_end_to_end_measures_throttling_off_and_on_side_by_side(results):
    throttle = results["e2e"]["throttle"]
    assert throttle["pairs"] >= 1 and len(throttle["rounds"]["off"]) == len(throttle["rounds"]["on"]) == throttle["pairs"]
    for side in ("off", "on"):   # allowed calls only: the counting tier is never reached
        assert throttle[side]["requests"] > 0 and throttle[side]["non_2xx"] == 0, throttle[side]
        assert throttle[side]["authz_cpu_us_per_request"] > 0, throttle[side]
    assert isinstance(throttle["authz_cpu_us_on_minus_off_median"], float)
    assert len(throttle["load_average_before"]) == 3
    assert any("through Envoy" in check["target"] for check in results["targets"])
