"""Part 3: scale. A state of 10,000 APIs, 100,000 applications, 1,000,000 subscriptions and
1,000,000 API keys (times `fraction`), bulk-inserted straight into admin_api's SQLite
database, then: a fresh authz_server's time to ready and its memory, decision cost against
the small state, and the time from an admin revoke to the first denial on every worker.

The rows are clones of ones admin_api itself wrote (same JSON shapes); the change log is
left pruned and the revision counter moved on, which is a state admin_api can be in
anyway (a replica then gets a snapshot, exactly as a new replica does).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import grpc
from envoy.service.auth.v3 import external_auth_pb2_grpc
from google.rpc import code_pb2
from sqlalchemy import Engine, create_engine, delete, event, insert, select, text, update

from admin_api.db import models
from bench import load, proc
from bench.check_bodies import check_request
from bench.policy import Admin, BenchMesh
from mesh.components import ADMIN_API, AUTHZ_SERVER
from portcullis_shared.credentials import credential_hash, mask

FULL = {"apis": 10_000, "applications": 100_000, "subscriptions": 1_000_000, "api_keys": 1_000_000}
BATCH = 20_000


@dataclass(frozen=True)
class Sizes:
    apis: int
    applications: int
    subscriptions: int

    @classmethod
    def of(cls, fraction: float) -> "Sizes":
        apis = max(10, round(FULL["apis"] * fraction))
        applications = max(10, round(FULL["applications"] * fraction))
        per_app = FULL["subscriptions"] // FULL["applications"]
        return cls(apis, applications, applications * per_app)

    @property
    def per_app(self) -> int:
        return self.subscriptions // self.applications


def key_value(n: int) -> str:
    return f"pck_bench-scale-key-{n:010d}"


def _id(kind: str, n: int) -> str:
    return f"{kind}{n:031x}"


def _rows(template: dict[str, Any], count: int, fill) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for n in range(count):
        row = dict(template)
        fill(row, n)
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _database_bytes(engine: Engine) -> int:
    if engine.dialect.name == "sqlite":
        return Path(str(engine.url.database)).stat().st_size
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())


def generate(database: Path | str, sizes: Sizes, template_ids: dict[str, str]) -> dict[str, Any]:
    """Bulk insert clones of the template API, application, subscription and key into
    admin_api's database: a SQLite file, or a SQLAlchemy URL (PostgreSQL)."""
    engine = create_engine(database if isinstance(database, str) else f"sqlite:///{database}")

    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _fast(connection: Any, _record: Any) -> None:
            connection.execute("PRAGMA synchronous=OFF")

    started = time.monotonic()
    tables = {name: model.__table__ for name, model in
              (("apis", models.Api), ("applications", models.Application), ("subscriptions", models.Subscription),
               ("api_keys", models.ApiKey))}
    with engine.begin() as conn:
        templates = {name: dict(conn.execute(select(table).where(table.c.id == template_ids[name])).mappings().one())
                     for name, table in tables.items()}
        stride = max(1, sizes.apis // sizes.per_app)

        def api(row: dict[str, Any], n: int) -> None:
            row.update(id=_id("a", n), name=f"scale-{n}", context=f"/scale-{n}", base_path=f"/scale-{n}/1.0.0")

        def application(row: dict[str, Any], n: int) -> None:
            row.update(id=_id("b", n), name=f"scale-app-{n}")

        def pair(n: int) -> tuple[int, int]:
            app, j = divmod(n, sizes.per_app)
            return app, (app + j * stride) % sizes.apis

        def subscription(row: dict[str, Any], n: int) -> None:
            app, api_n = pair(n)
            row.update(id=_id("c", n), application_id=_id("b", app), api_id=_id("a", api_n))

        def api_key(row: dict[str, Any], n: int) -> None:
            app, api_n = pair(n)
            value = key_value(n)
            row.update(id=_id("d", n), name=f"scale-key-{n}", application_id=_id("b", app), api_id=_id("a", api_n),
                       key_hash=credential_hash(value), masked_value=mask(value))

        for name, count, fill in (("apis", sizes.apis, api), ("applications", sizes.applications, application),
                                  ("subscriptions", sizes.subscriptions, subscription),
                                  ("api_keys", sizes.subscriptions, api_key)):
            for batch in _rows(templates[name], count, fill):
                conn.execute(insert(tables[name]), batch)
        # A pruned change log and a newer revision: every replica starts from a snapshot.
        conn.execute(delete(models.ChangeRecord.__table__))
        conn.execute(update(models.RevisionCounter.__table__).values(value=models.RevisionCounter.__table__.c.value + 1))
    seconds = time.monotonic() - started
    size = _database_bytes(engine)
    engine.dispose()
    return {"generate_seconds": round(seconds, 1), "database_bytes": size}


def api_key_path_of(n: int, sizes: Sizes) -> str:
    app, j = divmod(n, sizes.per_app)
    stride = max(1, sizes.apis // sizes.per_app)
    return f"/scale-{(app + j * stride) % sizes.apis}/1.0.0/menu"


def _measure(ports: list[int], pids: list[int], message, seconds: float, use_h2load: bool) -> dict[str, Any]:
    response = load.check_once(ports[0], message)
    if response.status.code != code_pb2.OK:
        raise RuntimeError(f"scale bench: expected an allow, got {response.denied_response.body}")
    meter = proc.CpuMeter(pids).start()
    result = (load.h2load if use_h2load else load.python_load)(ports, (message,), seconds=seconds)
    cpu = meter.stop()
    return {"rps": round(result.rps, 1), "p50_ms": round(result.percentile(0.5), 3),
            "p99_ms": round(result.percentile(0.99), 3),
            "cpu_us_per_decision": round(cpu * 1e6 / max(result.requests, 1), 1)}


def _time_ready(bench: BenchMesh, timeout: float) -> float:
    authz = bench.mesh[AUTHZ_SERVER]
    started = time.monotonic()
    authz.start()
    authz.wait_ready(timeout)
    return time.monotonic() - started


def revoke_propagation(admin: Admin, ports: list[int], key_ids: list[str], messages: list, timeout: float = 10.0) -> dict[str, Any]:
    """For each key: revoke it over REST, then ask every worker until each denies it."""
    channels = [grpc.insecure_channel(f"127.0.0.1:{port}") for port in ports]
    stubs = [external_auth_pb2_grpc.AuthorizationStub(channel) for channel in channels]
    first, every = [], []
    try:
        for key_id, message in zip(key_ids, messages):
            for stub in stubs:
                if stub.Check(message, timeout=5).status.code != code_pb2.OK:
                    raise RuntimeError("revoke bench: the key is denied before its revocation")
            started = time.perf_counter()
            admin.call("POST", f"/v1/api-keys/{key_id}/revoke")
            denied: dict[int, float] = {}
            while len(denied) < len(stubs):
                if time.perf_counter() - started > timeout:
                    raise RuntimeError(f"revocation of {key_id} not seen by every worker within {timeout}s")
                for index, stub in enumerate(stubs):
                    if index not in denied and stub.Check(message, timeout=5).status.code != code_pb2.OK:
                        denied[index] = time.perf_counter() - started
            first.append(min(denied.values()) * 1000)
            every.append(max(denied.values()) * 1000)
    finally:
        for channel in channels:
            channel.close()
    return {"revokes": len(first), "revoke_first_p50_ms": _pct(first, 0.5), "revoke_first_p99_ms": _pct(first, 0.99),
            "revoke_p50_ms": _pct(every, 0.5), "revoke_p99_ms": _pct(every, 0.99), "revoke_max_ms": round(max(every), 1)}


def _pct(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))], 1)


def make_templates(admin: Admin, settings: Any) -> tuple[dict[str, str], Any]:
    """The API, application, subscription and key that `generate` clones, made through the
    admin API; returns their ids and a CheckRequest of the template key."""
    endpoint = f"http://{settings.host}:{settings.backend_production_port}"
    api = admin.call("POST", "/v1/apis", {"name": "scale-template", "version": "1.0.0", "context": "/scale-template",
                                          "resources": [{"method": "GET", "path": "/menu"}],
                                          "production_endpoint": endpoint, "sandbox_endpoint": endpoint}, expect=201)
    api = admin.call("POST", f"/v1/apis/{api['id']}/lifecycle", {"target_state": "PUBLISHED"})
    app = admin.call("POST", "/v1/applications", {"name": "scale-template-app"}, expect=201)
    sub = admin.call("POST", "/v1/subscriptions", {"application_id": app["id"], "api_id": api["id"]}, expect=201)
    key = admin.call("POST", f"/v1/apis/{api['id']}/api-keys", {"name": "scale-template", "application_id": app["id"]},
                     expect=201)
    ids = {"apis": api["id"], "applications": app["id"], "subscriptions": sub["id"], "api_keys": key["api_key"]["id"]}
    return ids, check_request("/scale-template/1.0.0/menu", {"apikey": key["value"]})


def run(bench: BenchMesh, *, fraction: float, seconds: float, use_h2load: bool, revokes: int,
        ready_timeout: float = 900.0) -> dict[str, Any]:
    """`bench`: a mesh started WITHOUT its authz_server and Envoy (admin_api and backends up)."""
    sizes = Sizes.of(fraction)
    admin, settings = bench.admin, bench.settings
    ports = bench.authz_ports
    template_ids, small_message = make_templates(admin, settings)

    # Small state: the decision cost to compare with.
    small_ready = _time_ready(bench, 60)
    authz = bench.mesh[AUTHZ_SERVER]
    small = _measure(ports, proc.process_tree(authz.pid), small_message, seconds, use_h2load)
    authz.stop()
    bench.mesh[ADMIN_API].stop()

    generated = generate(settings.data_dir / "portcullis.db", sizes, template_ids)
    bench.mesh[ADMIN_API].start()
    bench.mesh[ADMIN_API].wait_ready(120)

    ready = _time_ready(bench, ready_timeout)
    pids = proc.process_tree(authz.pid)
    rss = {pid: proc.rss_bytes(pid) for pid in pids}
    probe = sizes.subscriptions // 2 + 1
    big_message = check_request(api_key_path_of(probe, sizes), {"apikey": key_value(probe)})
    big = _measure(ports, pids, big_message, seconds, use_h2load)
    big_small_api = _measure(ports, pids, small_message, seconds, use_h2load)
    victims = [sizes.subscriptions - 1 - 7 * i for i in range(revokes)]
    propagation = revoke_propagation(
        admin, ports, [_id("d", n) for n in victims],
        [check_request(api_key_path_of(n, sizes), {"apikey": key_value(n)}) for n in victims])
    return {
        "entities_fraction_of_full": fraction,
        "apis": sizes.apis, "applications": sizes.applications, "subscriptions": sizes.subscriptions,
        "api_keys": sizes.subscriptions + 1,
        **generated,
        "small_ready_seconds": round(small_ready, 2),
        "ready_seconds": round(ready, 2),
        "rss_total_bytes": sum(rss.values()),
        "rss_per_process_mib": ", ".join(f"{value / 2**20:.0f}" for value in rss.values()),
        "small_state_cpu_us_per_decision": small["cpu_us_per_decision"],
        "large_state_cpu_us_per_decision": big["cpu_us_per_decision"],
        "small_state_p50_ms": small["p50_ms"], "large_state_p50_ms": big["p50_ms"],
        "small_state_p99_ms": small["p99_ms"], "large_state_p99_ms": big["p99_ms"],
        "large_state_same_api_cpu_us_per_decision": big_small_api["cpu_us_per_decision"],
        "latency_ratio_vs_small": round(big["cpu_us_per_decision"] / small["cpu_us_per_decision"], 3)
        if small["cpu_us_per_decision"] else None,
        **propagation,
    }
