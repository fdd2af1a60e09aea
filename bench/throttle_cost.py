"""What the throttle stage costs per decision, in process CPU, load-independently enough to
check the ≤ 15 µs target on a shared machine.

The same allowed API-key decision (decide() and the CheckResponse bytes Envoy gets, built
as the servicer builds them for the native front end, with the RateLimit fields when a
tier counts) on a subscription on Unlimited (no counter) and on
one whose tier counts every call (10^12 a month, never reached), with the counter table in a
shared-memory file as authz_server's workers use it. Measured in interleaved rounds
(off, on, off, on, ...) so that a change of load hits both sides alike; the figure is the
median of the per-round differences. With valgrind installed, also the instructions per
decision of each side under callgrind (the load cannot change those), and the difference
in µs at the off side's own instructions per µs.

`python -m bench.throttle_cost [--rounds N] [--calls N] [--no-callgrind]` prints JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROUNDS = 15
CALLS = 20_000
CALLGRIND_CALLS = 3_000
BASE = "/pizzashack/1.0.0"
KEY = "pck_bench-throttle-cost-key"
TIER = "BenchCounting"


def _world(tier: str) -> list:
    from portcullis.admin.v1 import admin_pb2, throttling_pb2

    from bench.world import api_key_world

    policy = throttling_pb2.ThrottlingPolicy
    api = admin_pb2.Api(id="api-1", organization_id="default", name="api-1", version="1.0.0", context=BASE,
                        base_path=BASE, production_endpoint="http://127.0.0.1:8091",
                        sandbox_endpoint="http://127.0.0.1:8092", lifecycle_state=admin_pb2.Api.PUBLISHED,
                        resources=[admin_pb2.Resource(method="GET", path="/menu")])
    return [*api_key_world(api, KEY, tier),
            policy(id="tp-bench", organization_id="default", name=TIER, kind=policy.SUBSCRIPTION,
                   request_count=10**12, unit=policy.MONTH, stop_on_quota_reach=True)]


def _index(tier: str):
    from portcullis.sync.v1 import sync_pb2

    from authz_server.index.policy_index import PolicyIndex

    entities = []
    for record in _world(tier):
        field = {"Organization": "organization", "Api": "api", "Application": "application",
                 "Subscription": "subscription", "ApiKeyRecord": "api_key",
                 "ThrottlingPolicy": "throttling_policy"}[type(record).DESCRIPTOR.name]
        entities.append(sync_pb2.PolicyEntity(**{field: record}))
    return PolicyIndex.from_snapshot(entities, 1)


def _request():
    from ipaddress import ip_address

    from authz_server.context import RequestContext
    from authz_server.pipeline.paths import parse_path

    return RequestContext(method="GET", raw_path=BASE + "/menu", segments=parse_path(BASE + "/menu"), query=(),
                          headers={"apikey": (KEY,)}, peer_address="127.0.0.1", client_ip=ip_address("127.0.0.1"))


def decisions(table_path: str) -> tuple[Callable[[], bytes], Callable[[], bytes], Callable[[], None]]:
    """(one decision off, one decision on, close): each returns the response bytes."""
    from authz_server.envoy_adapter import EncodedAllows
    from authz_server.pipeline import Allow, decide
    from authz_server.throttle.limiter import Throttle
    from authz_server.throttle.local_counting import LocalCounters
    from authz_server.throttle.shared_table import SharedTable

    table = SharedTable.open(table_path)
    throttle = Throttle(LocalCounters(table), table=table)
    request = _request()
    off, on = _index("Unlimited"), _index(TIER)

    def one(index) -> Callable[[], bytes]:
        encoded = EncodedAllows()   # as the servicer answers the native front end (check_encoded)

        def call() -> bytes:
            decision = decide(request, index, time.time(), throttle=throttle)
            return encoded.encoded(decision, request, index)
        return call

    call_off, call_on = one(off), one(on)
    for call, counted in ((call_off, False), (call_on, True)):   # the same decision, allowed, counted or not
        decision = decide(request, off if not counted else on, time.time(), throttle=throttle)
        assert isinstance(decision, Allow), decision
        assert bool(decision.rate_limit_headers) is counted, decision.rate_limit_headers
        call()
    return call_off, call_on, throttle.stop


def _cpu_us(call: Callable[[], bytes], calls: int) -> float:
    started = time.process_time()
    for _ in range(calls):
        call()
    return (time.process_time() - started) / calls * 1e6


def paired_rounds(rounds: int = ROUNDS, calls: int = CALLS) -> dict[str, Any]:
    from authz_server.throttle.table_file import shared_counter_table

    with shared_counter_table(4096) as path:
        call_off, call_on, close = decisions(path)
        try:
            _cpu_us(call_off, calls // 4), _cpu_us(call_on, calls // 4)   # warm
            offs, ons = [], []
            for round_ in range(rounds):
                first, second = (call_off, call_on) if round_ % 2 == 0 else (call_on, call_off)   # A/B, then B/A
                a, b = _cpu_us(first, calls), _cpu_us(second, calls)
                off, on = (a, b) if round_ % 2 == 0 else (b, a)
                offs.append(off)
                ons.append(on)
        finally:
            close()
    deltas = sorted(on - off for off, on in zip(offs, ons))
    return {
        "rounds": rounds, "calls_per_side_per_round": calls,
        "off_us_median": round(statistics.median(offs), 2), "on_us_median": round(statistics.median(ons), 2),
        "on_minus_off_us_median": round(statistics.median(deltas), 2),
        "on_minus_off_us_quartiles": [round(q, 2) for q in statistics.quantiles(deltas, n=4)],
        "on_minus_off_us_min_max": [round(deltas[0], 2), round(deltas[-1], 2)],
    }


_CALLGRIND_PROGRAM = r"""
import sys
from authz_server.throttle.table_file import shared_counter_table
from bench.throttle_cost import decisions
side, calls = sys.argv[1], int(sys.argv[2])
with shared_counter_table(4096) as path:
    call_off, call_on, close = decisions(path)
    call = call_on if side == "on" else call_off
    for _ in range(calls):
        call()
    close()
"""


def _instructions(side: str, calls: int, out: Path) -> int:
    """Instructions (Ir) of the whole interpreter run under callgrind, `calls` decisions."""
    target = out / f"callgrind.{side}.{calls}"
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={target}",
                    sys.executable, "-c", _CALLGRIND_PROGRAM, side, str(calls)],
                   check=True, capture_output=True, text=True)
    match = re.search(r"^summary:\s+(\d+)", target.read_text(), re.MULTILINE)
    assert match, "no summary line in the callgrind output"
    return int(match.group(1))


def callgrind(calls: int = CALLGRIND_CALLS) -> dict[str, Any] | None:
    """Instructions per decision of each side: the difference between runs of 2n and n
    decisions removes start-up and import."""
    if shutil.which("valgrind") is None:
        return None
    with tempfile.TemporaryDirectory(prefix="portcullis-callgrind-") as tmp:
        out = Path(tmp)
        per = {side: (_instructions(side, 2 * calls, out) - _instructions(side, calls, out)) / calls
               for side in ("off", "on")}
    return {"calls": calls, "off_instructions_per_decision": round(per["off"]),
            "on_instructions_per_decision": round(per["on"]),
            "on_minus_off_instructions": round(per["on"] - per["off"])}


def run(rounds: int = ROUNDS, calls: int = CALLS, with_callgrind: bool = True) -> dict[str, Any]:
    figures: dict[str, Any] = {"paired": paired_rounds(rounds, calls)}
    counted = callgrind() if with_callgrind else None
    if counted is not None:
        # µs at the off side's own rate (instructions per µs of the same code, measured above).
        rate = counted["off_instructions_per_decision"] / figures["paired"]["off_us_median"]
        counted["instructions_per_us_off_side"] = round(rate)
        counted["on_minus_off_us_at_that_rate"] = round(counted["on_minus_off_instructions"] / rate, 2)
        figures["callgrind"] = counted
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.throttle_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--calls", type=int, default=CALLS)
    parser.add_argument("--no-callgrind", action="store_true")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.rounds, args.calls, not args.no_callgrind), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
