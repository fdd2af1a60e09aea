"""`python -m bench` (`make bench`): run the benchmarks and write bench/results/latest.{md,json}.

Every load run lasts a fixed number of seconds and stops by itself; everything listens on
127.0.0.1. Options: --seconds per load run, --scale (fraction of the full 1M-key state),
--parts (direct,e2e,scale,xds,transports,fleet), --fleet-streams and --fleet-replicas (the fleet part), --xds-apis and --publishes (the xds part), --out (results directory), --profile DIR (py-spy),
--before DIR (each direct scenario also on authz_server from another source tree, right before this one's),
--no-callgrind (the throttle and call costs without their instruction counts), --no-e2e-throttle (the e2e part
without its throttling off/on rounds through Envoy), --e2e-throttle-pairs (4).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from authz_server.settings import worker_count
from bench import call_cost, direct, e2e, fleet, load, metrics_cost, proc, report, scale, throttle_cost, transports, xds
from bench.policy import BenchMesh, bench_env, create_counting_tier, create_policy, start_admin_only, start_mesh
from mesh.components import AUTHZ_SERVER
from portcullis.admin.v1 import admin_pb2
from portcullis_shared.settings import REPO_ROOT

PARTS = ("direct", "e2e", "scale", "xds", "transports", "fleet")


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {"cores": os.cpu_count(), "cpu_model": proc.cpu_model(), "memory_gib": round(memory_kib / 2**20, 1),
            "load_average_at_start": load_average()}


def load_average() -> str:
    """1, 5 and 15 minute load averages (other work on a shared machine shows here)."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (" (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else "")


def backend_jwt_supported() -> bool:
    return "backend_jwt" in admin_pb2.Api.DESCRIPTOR.fields_by_name


def _authz_pids(bench: BenchMesh):
    return lambda: proc.process_tree(bench.mesh[AUTHZ_SERVER].pid)


def _restart_authz(bench: BenchMesh, **env: str | None) -> None:
    authz = bench.mesh[AUTHZ_SERVER]
    for name, value in env.items():
        if value is None:
            authz.env.pop(name, None)
        else:
            authz.env[name] = value
    authz.restart()


def _before_and_after(bench: BenchMesh, before: Path, ports, pids, scenario, seconds: float,
                       use_h2load: bool) -> list[dict[str, Any]]:
    """`scenario` on authz_server from the source tree `before` (rows `..._before`), then on
    this tree: the same mesh, policy and machine minutes, one right after the other."""
    authz = bench.mesh[AUTHZ_SERVER]
    rows = []
    for tree, suffix in ((before, "_before"), (REPO_ROOT, "_after")):
        authz.cwd = tree   # `python -m authz_server` imports the tree it runs in first
        authz.restart()
        named = dataclasses.replace(scenario, name=scenario.name + suffix)
        _say(f"direct: {named.name} ({tree})")
        rows.append(direct.run(ports, pids, named, seconds=seconds, use_h2load=use_h2load))
    return rows


def _metrics_on_off(bench: BenchMesh, policy, ports, pids, seconds: float, use_h2load: bool,
                    wanted: set[str] | None) -> list[dict[str, Any]]:
    """The cached API-key and JWT paths with PORTCULLIS_AUTHZ_METRICS=off, then on again,
    one right after the other: the difference is what counting costs per decision."""
    base = [scenario for scenario in direct.scenarios(policy) if scenario.name in ("api_key", "jwt_cached")]
    rows = []
    for switch in ("off", "on"):
        chosen = [dataclasses.replace(each, name=f"{each.name}_metrics_{switch}") for each in base]
        chosen = [each for each in chosen if wanted is None or each.name in wanted]
        if not chosen:
            continue
        _restart_authz(bench, PORTCULLIS_AUTHZ_METRICS=switch if switch == "off" else None)
        for scenario in chosen:
            _say(f"direct: {scenario.name}")
            rows.append(direct.run(ports, pids, scenario, seconds=seconds, use_h2load=use_h2load))
    return rows


def _throttle_on_off(bench: BenchMesh, unthrottled, ports, pids, seconds: float, use_h2load: bool,
                     wanted: set[str] | None, rounds: int = 3,
                     profile_dir: Path | None = None) -> list[dict[str, Any]]:
    """The cached API-key and JWT paths of a subscription on Unlimited (no counter) and of
    one whose tier counts every call (never reached), in `rounds` interleaved rounds (off
    then on, then on then off, ...) so that a change of the machine's load hits both sides
    alike; each row carries its round."""
    names = [f"{name}_throttle_{switch}" for switch in ("off", "on") for name in ("api_key", "jwt_cached")]
    if wanted is not None and not wanted & set(names):
        return []
    throttled = create_policy(bench.admin, bench.settings, name="benchtl", tier=create_counting_tier(bench.admin))
    # With --profile, each side's last round is the profile kept.
    sides = {"off": unthrottled, "on": throttled}
    rows = []
    for round_ in range(max(1, rounds)):
        order = ("off", "on") if round_ % 2 == 0 else ("on", "off")
        for name in ("api_key", "jwt_cached"):
            for switch in order:
                scenario = next(each for each in direct.scenarios(sides[switch]) if each.name == name)
                scenario = dataclasses.replace(scenario, name=f"{name}_throttle_{switch}")
                if wanted is not None and scenario.name not in wanted:
                    continue
                _say(f"direct: {scenario.name} (round {round_ + 1})")
                row = direct.run(ports, pids, scenario, seconds=seconds, use_h2load=use_h2load,
                                 profile_dir=profile_dir)
                rows.append(dict(row, round=round_ + 1))
    return rows


def _on_minus_off(rows: list[dict[str, Any]], switch: str) -> dict[str, Any]:
    """Server CPU per decision, on minus off, per path: the median of the rounds' differences
    when the rows carry rounds (and every round's difference), else the one difference."""
    cpu = "server_cpu_us_per_decision"
    delta: dict[str, Any] = {}
    for name in ("api_key", "jwt_cached"):
        by_round: dict[int, dict[str, float]] = {}
        for row in rows:
            for side in ("on", "off"):
                if row["scenario"] == f"{name}_{switch}_{side}" and row.get(cpu):
                    by_round.setdefault(row.get("round", 1), {})[side] = row[cpu]
        differences = [sides["on"] - sides["off"] for _, sides in sorted(by_round.items()) if len(sides) == 2]
        if differences:
            delta[f"{name}_server_cpu_us_on_minus_off"] = round(statistics.median(differences), 1)
            if len(differences) > 1:
                delta[f"{name}_server_cpu_us_on_minus_off_rounds"] = [round(each, 1) for each in differences]
    return delta


def _metrics_delta(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return _on_minus_off(rows, "metrics")


def run_mesh_parts(parts: set[str], data_dir: Path, env: dict[str, str], seconds: float, use_h2load: bool,
                   results: dict[str, Any], profile_dir: Path | None = None,
                   wanted: set[str] | None = None, publishes: int = 50, before: Path | None = None,
                   callgrind: bool = True, e2e_throttle_pairs: int = 4) -> None:
    for bench in start_mesh(data_dir, env):
        if "xds" in parts:
            _say(f"xds: publish to first 200, {publishes} publishes")
            results.setdefault("xds", {})["publish_to_first_200"] = xds.publish_to_first_200(bench, publishes)
        if not parts & {"direct", "e2e"}:
            continue  # the generator then stops the mesh
        policy = create_policy(bench.admin, bench.settings)
        policies = [("", policy)]
        if backend_jwt_supported():
            policies.append(("_backend_jwt", create_policy(bench.admin, bench.settings, name="benchbj",
                                                           backend_jwt={"enabled": True,
                                                                        "include_on_open_resources": True})))
        ports, pids = bench.authz_ports, _authz_pids(bench)
        if "direct" in parts and before is not None:
            rows = []
            for round_ in range(2):   # before, after, before, after: drift shows as a spread
                for scenario in direct.scenarios(policy):
                    if wanted is None or scenario.name in wanted:
                        rows += [dict(row, round=round_ + 1) for row in
                                 _before_and_after(bench, before, ports, pids, scenario, seconds, use_h2load)]
            results["direct"] = rows
            continue
        if "direct" in parts:
            rows = []
            for suffix, each in policies:
                for scenario in direct.scenarios(each, suffix):
                    if wanted is not None and scenario.name not in wanted:
                        continue
                    _say(f"direct: {scenario.name}")
                    rows.append(direct.run(ports, pids, scenario, seconds=seconds, use_h2load=use_h2load,
                                           profile_dir=profile_dir))
            # First sight: the verified-token cache off, so every Check verifies the signature, and
            # the backend-JWT cache at one entry with two tokens taking turns, so it signs anew.
            first_sight = [direct.first_sight_scenario(each, "jwt_first_sight" + suffix) for suffix, each in policies]
            first_sight = [each for each in first_sight if wanted is None or each.name in wanted]
            if first_sight:
                _restart_authz(bench, PORTCULLIS_VERIFIED_TOKEN_CACHE_SIZE="0", PORTCULLIS_BACKEND_JWT_CACHE_SIZE="1")
            for scenario in first_sight:
                _say(f"direct: {scenario.name}")
                rows.append(direct.run(ports, pids, scenario, seconds=seconds, use_h2load=use_h2load,
                                       profile_dir=profile_dir))
            if first_sight:
                _restart_authz(bench, PORTCULLIS_VERIFIED_TOKEN_CACHE_SIZE=None, PORTCULLIS_BACKEND_JWT_CACHE_SIZE=None)
            # The same cached paths on grpcio's server, for comparison with the native front end.
            on_grpcio = [dataclasses.replace(scenario, name=scenario.name + "_on_grpcio")
                         for scenario in direct.scenarios(policies[-1][1], policies[-1][0])
                         if scenario.name.startswith(("api_key", "jwt_cached"))]
            on_grpcio = [each for each in on_grpcio if wanted is None or each.name in wanted]
            if on_grpcio:
                _restart_authz(bench, PORTCULLIS_AUTHZ_FRONTEND="grpcio")
                for scenario in on_grpcio:
                    _say(f"direct: {scenario.name}")
                    rows.append(direct.run(ports, pids, scenario, seconds=seconds, use_h2load=use_h2load))
                _restart_authz(bench, PORTCULLIS_AUTHZ_FRONTEND=None)
            rows += _metrics_on_off(bench, policies[0][1], ports, pids, seconds, use_h2load, wanted)
            results["direct"] = rows
            results["metrics_cost"] = metrics_cost.run()
            results["metrics_cost"].update(_metrics_delta(rows))
            throttle_rows = _throttle_on_off(bench, policies[0][1], ports, pids, seconds, use_h2load, wanted,
                                             rounds=max(1, e2e_throttle_pairs), profile_dir=profile_dir)
            rows += throttle_rows
            results["throttle_cost"] = _on_minus_off(throttle_rows, "throttle")
            _say("throttle cost: in process, paired rounds and callgrind")
            results["throttle_cost"]["in_process"] = throttle_cost.run(
                rounds=15 if seconds >= 5 else 5, calls=max(1000, int(seconds * 4000)), with_callgrind=callgrind)
        if "e2e" in parts:
            if not e2e.have_wrk():
                _say("e2e: skipped, wrk is not installed (make bench installs it)")
            else:
                full = policies[-1][1]  # with backend JWT when this build has it
                pair = None
                if e2e_throttle_pairs > 0:   # the plain policy (Unlimited) and its twin on a counting tier
                    pair = e2e.ThrottlePair(off=policy, on=create_policy(
                        bench.admin, bench.settings, name="benche2etl", tier=create_counting_tier(bench.admin)),
                        pairs=e2e_throttle_pairs)
                _say("e2e: none, jwt_authn, portcullis (wrk)" + (", then throttle off/on rounds" if pair else ""))
                results["e2e"] = e2e.run(full, admin=bench.admin, settings=bench.settings,
                                         authz_workers=bench.mesh.authz_workers, authz_pids=pids, data_dir=data_dir,
                                         seconds=seconds, profile_dir=profile_dir, throttle=pair)
                results["e2e"]["portcullis_routes"] = "xDS (ADS) from admin_api"
                results["e2e"]["policy"] = "full: API key or OAuth2, subscription, scope" + (
                    ", backend JWT" if len(policies) > 1 else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each load run (default 5)")
    parser.add_argument("--scale", type=float, default=float(os.environ.get("BENCH_SCALE", "0.1")),
                        help="fraction of 10k APIs / 100k apps / 1M subscriptions / 1M keys (default 0.1)")
    parser.add_argument("--xds-apis", type=int, default=10_000,
                        help="APIs pushed to a new Envoy in the xds part (default 10000)")
    parser.add_argument("--publishes", type=int, default=50, help="publishes timed in the xds part (default 50)")
    parser.add_argument("--revokes", type=int, default=50, help="revocations timed in the scale part")
    parser.add_argument("--fleet-streams", default="10,50",
                        help="Watch streams opened at once in the fleet part (default 10,50)")
    parser.add_argument("--fleet-replicas", type=int, default=10,
                        help="authz_server replicas (one worker each) timed in the fleet part (default 10)")
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated subset of " + ",".join(PARTS))
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    parser.add_argument("--scenarios", default="",
                        help="comma-separated direct scenarios to run (default: all), e.g. api_key,jwt_first_sight")
    parser.add_argument("--profile", type=Path, default=None,
                        help="also record a py-spy profile (speedscope) of one worker per direct run into this folder")
    parser.add_argument("--before", type=Path, default=None,
                        help="a source tree (e.g. `git archive main` unpacked): only the chosen direct scenarios, "
                             "each on that tree's authz_server and then this one's, twice")
    parser.add_argument("--no-callgrind", action="store_true",
                        help="skip the instruction counts under valgrind of the throttle stage and of whole calls (minutes)")
    parser.add_argument("--no-e2e-throttle", action="store_true",
                        help="skip the e2e part's throttling off/on rounds through Envoy (8 wrk runs of --seconds)")
    parser.add_argument("--e2e-throttle-pairs", type=int, default=4,
                        help="pairs of off/on rounds in the e2e part's throttling rounds (default 4)")
    parser.add_argument("--conditions", default=os.environ.get("BENCH_CONDITIONS", "not stated"),
                        help="a note on the machine's load during the run, copied into the results")
    args = parser.parse_args(argv)
    parts = {part.strip() for part in args.parts.split(",") if part.strip()}
    unknown = parts - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    # The bench mesh runs on its own settings; these two the caller may set to compare.
    env = bench_env({name: os.environ[name] for name in ("PORTCULLIS_AUTHZ_WORKERS", "PORTCULLIS_THROTTLE_HEADERS_ON_ALLOW")
                     if name in os.environ})
    use_h2load = load.have_h2load()
    if not use_h2load:
        _say("h2load not found: the direct part uses the Python load generator (costly, figures not comparable)")
    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": machine(),
        "config": {"before": str(args.before) if args.before else None, "authz_workers": worker_count(env), "seconds": args.seconds, "parts": sorted(parts),
                   "tools": ("h2load" if use_h2load else "python-grpc") + (", wrk" if e2e.have_wrk() else ""),
                   "conditions": args.conditions, "backend_jwt": backend_jwt_supported()},
    }
    with tempfile.TemporaryDirectory(prefix="portcullis-bench-") as tmp:
        if parts & {"direct", "e2e", "xds"}:
            run_mesh_parts(parts, Path(tmp) / "mesh", env, args.seconds, use_h2load, results, args.profile,
                           {name.strip() for name in args.scenarios.split(",") if name.strip()} or None,
                           publishes=args.publishes, before=args.before, callgrind=not args.no_callgrind,
                           e2e_throttle_pairs=0 if args.no_e2e_throttle else args.e2e_throttle_pairs)
        if "direct" in parts:
            _say("call cost: one whole Check in process through the native front end" +
                 ("" if args.no_callgrind else ", under callgrind"))
            results["call_cost"] = call_cost.run(calls=call_cost.CALLS if args.seconds >= 5 else 300,
                                                 with_callgrind=not args.no_callgrind)
        if "xds" in parts:
            _say(f"xds: {args.xds_apis} APIs to a new Envoy, then one change")
            results.setdefault("xds", {})["scale"] = xds.scale(args.xds_apis)
        if "scale" in parts:
            _say(f"scale: {args.scale:g} of the full state")
            for bench in start_admin_only(Path(tmp) / "scale", env):
                results["scale"] = scale.run(bench, fraction=args.scale, seconds=args.seconds,
                                             use_h2load=use_h2load, revokes=args.revokes)
        if "fleet" in parts:
            _say(f"fleet: SQLite and PostgreSQL, Watch fan-out, ten authz_servers, ready from cold at {args.scale:g}")
            results["fleet"] = fleet.run(Path(tmp) / "fleet", env, seconds=args.seconds, fraction=args.scale,
                                         revokes=args.revokes, fleet_replicas=args.fleet_replicas,
                                         streams=tuple(int(n) for n in args.fleet_streams.split(",") if n.strip()))
    if "transports" in parts and e2e.have_wrk():
        _say("transports: Envoy -> authz_server over h2c on TCP, a Unix socket and mTLS, side by side")
        results["transports"] = transports.run(min(args.seconds, 5.0))
    results["machine"]["load_average_at_end"] = load_average()
    json_path, md_path = report.write(results, args.out)
    _say(f"wrote {md_path} and {json_path}")
    print(md_path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
