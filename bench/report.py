"""bench/results/latest.json (everything measured) and latest.md (the tables)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TARGETS = {
    "cached_us_per_decision": 100.0,        # ≥ 10,000 Check/s per core
    "first_sight_backend_jwt_per_core": 2500.0,
    "portcullis_to_jwt_authn": 0.5,
    "half_load_p99_ms": 5.0,
    "scale_latency_ratio": 1.10,
    "scale_rss_bytes": 2 * 1024**3,
    "scale_ready_seconds": 60.0,
    "revoke_p99_ms": 250.0,
}


def _rounds(differences: list[float] | None) -> str:
    return f"(rounds: {', '.join(_fmt(each) for each in differences)})" if differences else ""


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_fmt(cell) for cell in row) + " |" for row in rows]
    return lines


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [
        "# Portcullis benchmark results",
        "",
        f"- date: {results['date']}",
        f"- commit: {results['commit']}",
        f"- machine: {machine['cores']} cores, {machine['cpu_model']}, {machine['memory_gib']} GiB",
        *([f"- load average (1, 5, 15 min): {machine['load_average_at_start']} at the start, "
           f"{machine.get('load_average_at_end', '–')} at the end"] if machine.get("load_average_at_start") else []),
        f"- authz_server workers: {results['config']['authz_workers']}, seconds per load run: "
        f"{results['config']['seconds']}, tools: {results['config']['tools']}",
        f"- conditions: {results['config']['conditions']}",
        "",
    ]
    direct = results.get("direct")
    if direct:
        lines += ["## Check over gRPC, direct to authz_server", ""]
        lines += _table(
            ["path", "requests/s", "p50 ms", "p99 ms", "p99.9 ms", "server CPU µs/decision", "cores busy", "failed"],
            [[r["scenario"], r["rps"], r["p50_ms"], r["p99_ms"], r["p999_ms"], r["server_cpu_us_per_decision"],
              r["server_cores_busy"], r["failed"]] for r in direct],
        )
        lines.append("")
    cost = results.get("metrics_cost")
    if cost:
        lines += ["## What the metrics cost per decision (CPU)", "",
                  f"- authz_server's recorder (plain ints, read at scrape): {_fmt(cost.get('recorder_us_per_decision'))} µs",
                  f"- prometheus-client Counter + Histogram in-process: "
                  f"{_fmt(cost.get('prometheus_client_us_per_decision'))} µs; in multiprocess mode: "
                  f"{_fmt(cost.get('prometheus_client_multiprocess_us_per_decision'))} µs",
                  f"- through the server, metrics on minus off (rows `*_metrics_on` / `*_metrics_off`, run one after "
                  f"the other): API key {_fmt(cost.get('api_key_server_cpu_us_on_minus_off'))} µs, JWT cached "
                  f"{_fmt(cost.get('jwt_cached_server_cpu_us_on_minus_off'))} µs (within the run-to-run noise of "
                  "a shared machine)", ""]
    throttle = results.get("throttle_cost")
    if throttle:
        lines += ["## What throttling costs per decision (CPU)", "",
                  "- through the server, a subscription tier that counts every call minus the same call on "
                  "Unlimited (rows `*_throttle_on` / `*_throttle_off`, interleaved rounds, median of the "
                  f"rounds' differences): API key {_fmt(throttle.get('api_key_server_cpu_us_on_minus_off'))} µs "
                  f"{_rounds(throttle.get('api_key_server_cpu_us_on_minus_off_rounds'))}, JWT cached "
                  f"{_fmt(throttle.get('jwt_cached_server_cpu_us_on_minus_off'))} µs "
                  f"{_rounds(throttle.get('jwt_cached_server_cpu_us_on_minus_off_rounds'))}", ""]
        inner = throttle.get("in_process") or {}
        paired, counted = inner.get("paired"), inner.get("callgrind")
        if paired:
            lines.insert(-1, f"- in process (bench/throttle_cost.py: decide() and the CheckResponse bytes, counter "
                             f"table in shared memory), {paired['rounds']} interleaved rounds off/on: "
                             f"{_fmt(paired['on_minus_off_us_median'])} µs median difference (quartiles "
                             f"{', '.join(_fmt(q) for q in paired['on_minus_off_us_quartiles'])}; off "
                             f"{_fmt(paired['off_us_median'])} µs, on {_fmt(paired['on_us_median'])} µs)")
        if counted:
            lines.insert(-1, f"- under callgrind (instructions, which the machine's load does not change): "
                             f"{counted['off_instructions_per_decision']} off, {counted['on_instructions_per_decision']} "
                             f"on, +{counted['on_minus_off_instructions']} per decision = "
                             f"{_fmt(counted['on_minus_off_us_at_that_rate'])} µs at the off side's "
                             f"{counted['instructions_per_us_off_side']} instructions/µs")
    calls = results.get("call_cost")
    if calls:
        lines += ["## One whole Check in process (bench/call_cost.py)", "",
                  "HTTP/2 frames of a call as Envoy sends them into the native front end's connection, the "
                  "CheckResponse frames out; full policy (API key or OAuth2, subscription, scope, throttle stage, "
                  "backend JWT), decision log and metrics on. `constant`: the same front end answering a constant "
                  "allow (bench/constant_authz.py). Instructions under callgrind do not move with the machine's "
                  "load; CPU µs do.", ""]
        lines += _table(["case", "instructions per call", "× constant", "CPU µs per call"],
                        [[name, each.get("instructions_per_call"), each.get("times_constant"),
                          each.get("cpu_us_per_call")] for name, each in calls["cases"].items()])
        lines.append("")
    e2e = results.get("e2e")
    if e2e:
        lines += ["## End to end through Envoy (wrk, same route and backend, one Envoy)", ""]
        rows = []
        for name in ("none", "jwt_authn", "portcullis", "portcullis_half_load", "ext_authz_floor",
                     "ext_authz_floor_half_load"):
            r = e2e.get(name)
            if r:
                rows.append([name, r["rps"], r.get("p50_ms"), r.get("p99_ms"), r.get("non_2xx"),
                             r.get("envoy_cpu_us_per_request"), r.get("authz_cpu_us_per_request")])
        lines += _table(["gateway", "requests/s", "p50 ms", "p99 ms", "non-2xx", "Envoy CPU µs/req",
                         "authz_server CPU µs/req"], rows)
        lines += ["", f"- (c)/(a) portcullis / no authorization: {_fmt(e2e.get('ratio_portcullis_to_none'))}",
                  f"- (c)/(b) portcullis / jwt_authn: {_fmt(e2e.get('ratio_portcullis_to_jwt_authn'))}",
                  f"- ext_authz_floor / jwt_authn: {_fmt(e2e.get('ratio_floor_to_jwt_authn'))} (Envoy's ext_authz "
                  "filter with an authorization service that answers a constant allow: the most any ext_authz "
                  "service could reach here)"]
        half = e2e.get("portcullis_half_load")
        if half:
            lines.append(f"- half load: target {_fmt(half['target_rps'])} req/s, reached {_fmt(half['rps'])}, "
                         f"p99 {_fmt(half.get('p99_ms'))} ms ({half.get('connections', 16)} connections, "
                         f"{half.get('delay_ms_per_connection')} ms delay each after a pilot's round trip of "
                         f"{_fmt((half.get('pilot') or {}).get('round_trip_ms'))} ms)")
        floor_half = e2e.get("ext_authz_floor_half_load")
        if floor_half:
            lines.append(f"- the floor at the same target ({_fmt(floor_half['target_rps'])} req/s): reached "
                         f"{_fmt(floor_half['rps'])}, p99 {_fmt(floor_half.get('p99_ms'))} ms")
        if e2e.get("ratio_portcullis_to_floor") is not None:
            lines.append(f"- (c)/ext_authz_floor: {_fmt(e2e['ratio_portcullis_to_floor'])}")
        lines.append("")
        throttled = e2e.get("throttle")
        if throttled:
            lines += _e2e_throttle(throttled)
    transports = results.get("transports")
    if transports:
        lines += ["## Envoy → authz_server: h2c on TCP, Unix socket, mTLS (through Envoy, empty policy)", ""]
        lines += _table(["hop", "requests/s", "authz_server CPU µs/request", "Envoy CPU µs/request", "p50 ms", "p99 ms"],
                        [[r["mode"], r["rps"], r["authz_cpu_us_per_request"], r["envoy_cpu_us_per_request"],
                          r["p50_ms"], r["p99_ms"]] for r in transports["rows"]])
        lines += [""] + [f"- {mode} / tcp: requests/s x{_fmt(ratio['rps_ratio'])}, authz_server CPU per request "
                         f"x{_fmt(ratio['authz_cpu_ratio'])}" for mode, ratio in transports["vs_tcp"].items()]
        lines.append("")
    scale = results.get("scale")
    if scale:
        lines += ["## Scale", ""]
        lines += _table(["what", "value"], [[k, v] for k, v in scale.items() if not isinstance(v, (dict, list))])
        lines.append("")
    xds = results.get("xds")
    if xds:
        lines += ["## xDS (admin_api → Envoy)", ""]
        publish = xds.get("publish_to_first_200")
        if publish:
            lines.append(f"- publish to first 200 through Envoy over {publish['publishes']} publishes: "
                         f"p50 {_fmt(publish['p50_ms'])} ms, p99 {_fmt(publish['p99_ms'])} ms "
                         f"(max {_fmt(publish['max_ms'])} ms, polled every {_fmt(publish['poll_ms'])} ms)")
            lines.append("")
        if xds.get("scale"):
            lines += _table(["at scale", "value"], [[k, v] for k, v in xds["scale"].items()])
            lines.append("")
    lines += _fleet(results.get("fleet"))
    checks = results.get("targets")
    if checks:
        lines += ["## Targets", ""]
        lines += _table(["target", "measured", "met"], [[c["target"], c["measured"], "yes" if c["met"] else "NO"]
                                                         for c in checks])
        lines.append("")
    return "\n".join(lines) + "\n"


def _fleet(fleet: dict[str, Any] | None) -> list[str]:
    """The fleet part (bench/fleet.py): one table per measurement, its rows' keys as columns."""
    if not fleet:
        return []
    lines = ["## Fleet: admin_api on SQLite and PostgreSQL, Watch fan-out, ten authz_servers", ""]
    if isinstance(fleet.get("postgresql"), str):
        lines += [f"- PostgreSQL {fleet['postgresql']}", ""]
    titles = {"admin_writes": "Admin writes (POST /v1/applications, REST threads round robin over the replicas)",
              "watch_fanout": "Watch fan-out (lightweight Watch clients in one process, not full authz_servers)",
              "revoke_to_deny": "Revoke-to-deny across ten one-worker authz_servers (each asked directly, in turn)",
              "ready_from_cold": "A new one-worker authz_server, ready from cold"}
    for name, title in titles.items():
        rows = fleet.get(name) or []
        if rows:
            headers = list(rows[0])
            lines += [f"### {title}", ""] + _table(headers, [[row.get(h) for h in headers] for row in rows]) + [""]
    return lines


def _e2e_throttle(t: dict[str, Any]) -> list[str]:
    lines = [f"### What throttling costs through Envoy (gateway (c), {t['credential']}, {t['pairs']} pairs of "
             f"{t['seconds_per_round']} s rounds, off/on order swapped every other pair)", ""]
    lines += _table(["subscription tier", "requests/s", "p50 ms", "p99 ms", "non-2xx", "Envoy CPU µs/req",
                     "authz_server CPU µs/req"],
                    [[f"{label} ({side})", t[side]["rps"], t[side]["p50_ms"], t[side]["p99_ms"], t[side]["non_2xx"],
                      t[side]["envoy_cpu_us_per_request"], t[side]["authz_cpu_us_per_request"]]
                     for side, label in (("off", "Unlimited"), ("on", "counting, never reached"))])
    lines += ["", f"- authz_server CPU on minus off: {_fmt(t['authz_cpu_us_on_minus_off_median'])} µs per request "
                  f"(median of the per-round differences {', '.join(_fmt(d) for d in t['authz_cpu_us_on_minus_off_per_round'])}; "
                  f"over all rounds {_fmt(t['authz_cpu_us_on_minus_off_totals'])} µs); requests/s on / off "
                  f"{_fmt(t['rps_on_to_off'])}",
              f"- load average before / after: {' '.join(_fmt(v) for v in t['load_average_before'])} / "
              f"{' '.join(_fmt(v) for v in t['load_average_after'])}", ""]
    return lines


def target_checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    checks = []
    by_name = {r["scenario"]: r for r in results.get("direct", [])}
    for name in ("api_key", "jwt_cached", "opaque_cached", "jwt_cached_backend_jwt"):
        r = by_name.get(name)
        if r and r["server_cpu_us_per_decision"] is not None:
            checks.append({"target": f"{name}: ≤ 100 µs server CPU per decision",
                           "measured": r["server_cpu_us_per_decision"],
                           "met": r["server_cpu_us_per_decision"] <= TARGETS["cached_us_per_decision"]})
    for name in ("jwt_first_sight_backend_jwt", "jwt_first_sight"):
        r = by_name.get(name)
        if r and r["server_cpu_us_per_decision"]:
            per_core = 1e6 / r["server_cpu_us_per_decision"]
            checks.append({"target": f"{name}: ≥ 2,500 decisions/s per core", "measured": round(per_core, 1),
                           "met": per_core >= TARGETS["first_sight_backend_jwt_per_core"]})
            break
    cost = results.get("metrics_cost") or {}
    if cost.get("recorder_us_per_decision") is not None:
        checks.append({"target": "metrics: ≤ 5 µs CPU per decision", "measured": cost["recorder_us_per_decision"],
                       "met": cost["recorder_us_per_decision"] <= 5.0})
    throttle = results.get("throttle_cost") or {}
    inner = (throttle.get("in_process") or {}).get("paired")
    if inner:
        checks.append({"target": "throttling: ≤ 15 µs CPU per decision (in process, paired rounds, API key)",
                       "measured": inner["on_minus_off_us_median"], "met": inner["on_minus_off_us_median"] <= 15.0})
    if throttle.get("api_key_server_cpu_us_on_minus_off") is not None:
        checks.append({"target": "throttling: ≤ 15 µs CPU per decision (direct, API key)",
                       "measured": throttle["api_key_server_cpu_us_on_minus_off"],
                       "met": throttle["api_key_server_cpu_us_on_minus_off"] <= 15.0})
    call_cases = (results.get("call_cost") or {}).get("cases") or {}
    for name in ("api_key", "jwt_cached"):
        ratio = (call_cases.get(name) or {}).get("times_constant")
        if ratio is not None:
            checks.append({"target": f"{name}: ≤ 2.5× the constant server's instructions per call (in process)",
                           "measured": ratio, "met": ratio <= 2.5})
    first, cached = call_cases.get("jwt_first_sight") or {}, call_cases.get("jwt_cached") or {}
    if first.get("instructions_per_call") and cached.get("instructions_per_call"):
        rate = round(cached["instructions_per_call"] / first["instructions_per_call"], 2)
        checks.append({"target": "first-sight JWT with backend JWT ≥ 0.5× the cached rate (instructions, in process)",
                       "measured": rate, "met": rate >= 0.5})
    e2e = results.get("e2e") or {}
    through_envoy = e2e.get("throttle")
    if through_envoy:
        checks.append({"target": "throttling: ≤ 15 µs CPU per decision (through Envoy, API key, authz_server CPU)",
                       "measured": through_envoy["authz_cpu_us_on_minus_off_median"],
                       "met": through_envoy["authz_cpu_us_on_minus_off_median"] <= 15.0})
    if e2e.get("ratio_portcullis_to_jwt_authn") is not None:
        checks.append({"target": "(c)/(b) ≥ 0.5", "measured": e2e["ratio_portcullis_to_jwt_authn"],
                       "met": e2e["ratio_portcullis_to_jwt_authn"] >= TARGETS["portcullis_to_jwt_authn"]})
    half = e2e.get("portcullis_half_load")
    if half and half.get("p99_ms") is not None:
        checks.append({"target": "p99 ≤ 5 ms at half of peak", "measured": half["p99_ms"],
                       "met": half["p99_ms"] <= TARGETS["half_load_p99_ms"]})
    floor_half = e2e.get("ext_authz_floor_half_load")
    if half and floor_half and half.get("p99_ms") is not None and floor_half.get("p99_ms"):
        times = round(half["p99_ms"] / floor_half["p99_ms"], 2)
        checks.append({"target": "p99 at half of (c)'s peak ≤ 2× the floor's p99 at the same rate",
                       "measured": times, "met": times <= 2.0})
    if e2e.get("ratio_portcullis_to_floor") is not None:
        checks.append({"target": "(c)/ext_authz_floor ≥ 0.8", "measured": e2e["ratio_portcullis_to_floor"],
                       "met": e2e["ratio_portcullis_to_floor"] >= 0.8})
    if e2e.get("ratio_portcullis_to_jwt_authn") is not None:
        checks.append({"target": "(c)/(b) ≥ 0.45 (speed, round two)", "measured": e2e["ratio_portcullis_to_jwt_authn"],
                       "met": e2e["ratio_portcullis_to_jwt_authn"] >= 0.45})
    scale = results.get("scale") or {}
    scale_checks: list[dict[str, Any]] = []
    if scale.get("latency_ratio_vs_small") is not None:
        scale_checks.append({"target": "scale latency within 10% of small state", "measured": scale["latency_ratio_vs_small"],
                       "met": scale["latency_ratio_vs_small"] <= TARGETS["scale_latency_ratio"]})
    if scale.get("rss_total_bytes") is not None:
        scale_checks.append({"target": "RSS ≤ 2 GiB", "measured": scale["rss_total_bytes"],
                       "met": scale["rss_total_bytes"] <= TARGETS["scale_rss_bytes"]})
    if scale.get("ready_seconds") is not None:
        scale_checks.append({"target": "ready from cold ≤ 60 s", "measured": scale["ready_seconds"],
                       "met": scale["ready_seconds"] <= TARGETS["scale_ready_seconds"]})
    if scale.get("revoke_p99_ms") is not None:
        scale_checks.append({"target": "revoke-to-deny p99 ≤ 250 ms", "measured": scale["revoke_p99_ms"],
                       "met": scale["revoke_p99_ms"] <= TARGETS["revoke_p99_ms"]})
    if scale.get("entities_fraction_of_full") not in (None, 1.0):
        for check in scale_checks:
            check["target"] += f" (at {scale['entities_fraction_of_full']:g} of the full state)"
    checks += scale_checks
    for row in (results.get("fleet") or {}).get("revoke_to_deny", []):
        checks.append({"target": f"fleet revoke-to-deny p99 ≤ 250 ms ({row['authz_replicas']} authz_servers, "
                                 f"{row['database']} × {row['admin_replicas']})",
                       "measured": row["whole_fleet_p99_ms"], "met": row["whole_fleet_p99_ms"] <= TARGETS["revoke_p99_ms"]})
    return checks


def write(results: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    results["targets"] = target_checks(results)
    json_path, md_path = out_dir / "latest.json", out_dir / "latest.md"
    json_path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    md_path.write_text(markdown(results))
    return json_path, md_path
