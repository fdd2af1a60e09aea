"""Part 5: the scaled-out topology (issue 15), on a real PostgreSQL when one is installed
(the test suite's throw-away server, tests/postgres_server.py, here durable: fsync and
synchronous commit on, like SQLite's WAL default).

For each of SQLite (one admin_api), PostgreSQL with one and with two admin_api replicas:
- admin writes per second (bench/admin_writes.py);
- Watch fan-out to 10 and 50 streams: snapshot time and change latency
  (bench/watch_fanout.py: lightweight Watch clients, not full authz_servers);
- on SQLite and on PostgreSQL with two replicas: revoke-to-deny across a fleet of ten
  authz_server replicas of one worker each (mesh.fleet, no Envoy: each replica is asked
  directly, in turn), the revoke written through the last admin_api replica while the
  fleet watches the first (on PostgreSQL that is the LISTEN/NOTIFY path).
Then ready-from-cold of a new one-worker authz_server at `fraction` of the 1M-subscription
state, generated into SQLite and into PostgreSQL (bench/scale.py's clones), side by side.
"""

from __future__ import annotations

import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

from envoy.service.auth.v3 import external_auth_pb2_grpc
from google.rpc import code_pb2

from authz_server.settings import worker_count
from bench import admin_writes, proc, scale, watch_fanout
from bench.admin_writes import _percentile
from bench.check_bodies import check_request
from bench.policy import Admin, BenchMesh, SetupFailed, mesh_settings, serving
from mesh import fleet as mesh_fleet
from mesh.components import ADMIN_API
from mesh.runner import Mesh
from tests.postgres_server import PostgresServer, find_bin_dir

TOPOLOGIES = (("sqlite", 1), ("postgresql", 1), ("postgresql", 2))
FLEET_ON = {("sqlite", 1), ("postgresql", 2)}
FLEET_REPLICAS = 10
ALLOW_WAIT_SECONDS = 30.0
DENY_WAIT_SECONDS = 10.0


def _say(message: str) -> None:
    print(f"bench: fleet: {message}", file=sys.stderr, flush=True)


@contextmanager
def postgres() -> Iterator[PostgresServer | None]:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        yield None
        return
    server = PostgresServer(bin_dir).init(durable=True).start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.destroy()


@contextmanager
def control_plane(data_dir: Path, env: Mapping[str, str], *, database_url: str = "",
                  replicas: int = 1) -> Iterator[BenchMesh]:
    """admin_api (every replica) and the backends; no authz_server, no Envoy."""
    settings = mesh_settings(data_dir, worker_count(env), admin_replicas=replicas, database_url=database_url)
    mesh = Mesh(settings, base_env=env, log_dir=data_dir / "logs")
    yield from serving(mesh, mesh.start_control_plane)


def _keyed_api(admin: Admin, settings: Any, keys: int) -> tuple[str, list[tuple[str, str]]]:
    """A published API (GET /menu), one subscribed application, `keys` API keys of it;
    returns the API's base path and (key id, value) pairs."""
    endpoint = f"http://{settings.host}:{settings.backend_production_port}"
    name = f"fleet-{uuid.uuid4().hex[:8]}"
    api = admin.call("POST", "/v1/apis", {"name": name, "version": "1.0.0", "context": f"/{name}",
                                          "resources": [{"method": "GET", "path": "/menu"}],
                                          "production_endpoint": endpoint, "sandbox_endpoint": endpoint}, expect=201)
    api = admin.call("POST", f"/v1/apis/{api['id']}/lifecycle", {"target_state": "PUBLISHED"})
    app = admin.call("POST", "/v1/applications", {"name": f"{name}-app"}, expect=201)
    admin.call("POST", "/v1/subscriptions", {"application_id": app["id"], "api_id": api["id"]}, expect=201)
    made = []
    for n in range(keys):
        key = admin.call("POST", f"/v1/apis/{api['id']}/api-keys", {"name": f"{name}-{n}", "application_id": app["id"]},
                         expect=201)
        made.append((key["api_key"]["id"], key["value"]))
    return str(api["base_path"]), made


def fleet_revoke(bench: BenchMesh, env: Mapping[str, str], *, revokes: int, replicas: int = FLEET_REPLICAS,
                 log_dir: Path | None = None) -> dict[str, Any]:
    """Revoke-to-deny at each of `replicas` authz_servers, `revokes` times: from just before
    the revoke call to the first denial seen at that replica (asked in turn, so a figure is
    late by at most one sweep over the fleet, reported as sweep_ms). Also the revoke call's
    own time (its commit) and the whole fleet's time after the call answered."""
    settings = bench.settings
    writer = Admin(settings.admin_replica(settings.admin_replicas - 1))
    base_path, keys = _keyed_api(bench.admin, settings, revokes)
    fleet = mesh_fleet.build(settings, env, replicas=replicas, envoys=0, log_dir=log_dir)
    started_at = time.monotonic()
    fleet.start()
    fleet_ready = time.monotonic() - started_at
    channels = [fleet.authz_channel(index) for index in range(replicas)]
    stubs = [external_auth_pb2_grpc.AuthorizationStub(channel) for channel in channels]
    every, last, sweeps, acks, after_ack = [], [], [], [], []
    try:
        for key_id, value in keys:
            message = check_request(base_path + "/menu", {"apikey": value})
            deadline = time.monotonic() + ALLOW_WAIT_SECONDS
            while not all(stub.Check(message, timeout=5).status.code == code_pb2.OK for stub in stubs):
                if time.monotonic() > deadline:
                    raise SetupFailed("fleet: a key never allowed by every replica")
                time.sleep(0.05)
            started = time.perf_counter()
            writer.call("POST", f"/v1/api-keys/{key_id}/revoke")
            acked = (time.perf_counter() - started) * 1000
            denied: dict[int, float] = {}
            while len(denied) < replicas:
                sweep_started = time.perf_counter()
                if sweep_started - started > DENY_WAIT_SECONDS:
                    raise SetupFailed(f"fleet: revocation of {key_id} not seen by every replica in {DENY_WAIT_SECONDS}s")
                for index, stub in enumerate(stubs):
                    if index not in denied and stub.Check(message, timeout=5).status.code != code_pb2.OK:
                        denied[index] = (time.perf_counter() - started) * 1000
                sweeps.append((time.perf_counter() - sweep_started) * 1000)
            every += denied.values()
            last.append(max(denied.values()))
            acks.append(acked)
            after_ack.append(max(denied.values()) - acked)
        dead = [component.name for component in fleet.dead()]
    finally:
        for channel in channels:
            channel.close()
        fleet.stop()
        writer.close()
    if dead:
        raise SetupFailed(f"fleet: replicas died: {dead}")
    return {"database": "sqlite" if settings.database_url.startswith("sqlite") else "postgresql",
            "admin_replicas": settings.admin_replicas, "authz_replicas": replicas, "revokes": len(last),
            "fleet_ready_seconds": round(fleet_ready, 1),
            "replica_p50_ms": _percentile(every, 0.5), "replica_p99_ms": _percentile(every, 0.99),
            "whole_fleet_p50_ms": _percentile(last, 0.5), "whole_fleet_p99_ms": _percentile(last, 0.99),
            "whole_fleet_max_ms": round(max(last), 1), "sweep_ms": _percentile(sweeps, 0.5),
            # The revoke call itself (its commit included), and what came after its answer.
            "revoke_call_p50_ms": _percentile(acks, 0.5), "revoke_call_p99_ms": _percentile(acks, 0.99),
            "after_answer_p50_ms": _percentile(after_ack, 0.5), "after_answer_p99_ms": _percentile(after_ack, 0.99)}


def ready_from_cold(data_dir: Path, env: Mapping[str, str], *, database_url: str, fraction: float) -> dict[str, Any]:
    """A new one-worker authz_server's time from start to SERVING (its first snapshot applied)
    at `fraction` of the full state, and its memory."""
    sizes = scale.Sizes.of(fraction)
    with control_plane(data_dir, env, database_url=database_url) as bench:
        settings = bench.settings
        ids, _message = scale.make_templates(bench.admin, settings)
        bench.mesh[ADMIN_API].stop()
        generated = scale.generate(database_url or settings.data_dir / "portcullis.db", sizes, ids)
        bench.mesh[ADMIN_API].start()
        bench.mesh[ADMIN_API].wait_ready(300)
        fleet = mesh_fleet.build(settings, env, replicas=1, envoys=0, log_dir=data_dir / "logs")
        fleet.replicas[0].ready_timeout = 1800
        started = time.monotonic()
        fleet.start()
        try:
            ready = time.monotonic() - started
            rss = proc.rss_bytes(fleet.replicas[0].pid)
            probe = sizes.subscriptions // 2 + 1
            message = check_request(scale.api_key_path_of(probe, sizes), {"apikey": scale.key_value(probe)})
            with fleet.authz_channel(0) as channel:
                answer = external_auth_pb2_grpc.AuthorizationStub(channel).Check(message, timeout=10)
            if answer.status.code != code_pb2.OK:
                raise SetupFailed(f"fleet: a generated key was denied: {answer.denied_response.body}")
        finally:
            fleet.stop()
    return {"database": "sqlite" if not database_url else "postgresql", "fraction_of_full": fraction,
            "subscriptions": sizes.subscriptions, "api_keys": sizes.subscriptions + 1, **generated,
            "ready_seconds": round(ready, 1), "rss_mib": round(rss / 2**20)}


def run(data_dir: Path, env: Mapping[str, str], *, seconds: float, fraction: float, revokes: int,
        streams: tuple[int, ...] = (10, 50), writers: int = 4, changes: int = 20,
        fleet_replicas: int = FLEET_REPLICAS) -> dict[str, Any]:
    results: dict[str, Any] = {"admin_writes": [], "watch_fanout": [], "revoke_to_deny": [], "ready_from_cold": []}
    with postgres() as server:
        if server is None:
            results["postgresql"] = "not installed: SQLite rows only (Debian's postgresql package)"
        for database, replicas in TOPOLOGIES:
            if database == "postgresql" and server is None:
                continue
            url = server.create_database(migrated=False) if database == "postgresql" else ""
            where = data_dir / f"{database}-{replicas}"
            with control_plane(where, env, database_url=url, replicas=replicas) as bench:
                settings = bench.settings
                token = settings.admin_token_file.read_text(encoding="utf-8").strip()
                bases = [f"http://{settings.host}:{settings.admin_rest_port + i}" for i in range(replicas)]
                _say(f"{database} x{replicas}: admin writes, {writers} threads, {seconds:g} s")
                row = admin_writes.run(bases, token, seconds=seconds, threads=writers)
                results["admin_writes"].append({"database": database, **row})
                sync_token = settings.sync_token_file.read_text(encoding="utf-8").strip()
                for count in streams:
                    _say(f"{database} x{replicas}: Watch fan-out to {count} streams")
                    row = watch_fanout.run(settings.admin_grpc_targets, bases[0], token, sync_token, streams=count,
                                           changes=changes)
                    results["watch_fanout"].append({"database": database, **row})
                if (database, replicas) in FLEET_ON:
                    _say(f"{database} x{replicas}: revoke-to-deny across {fleet_replicas} authz_servers")
                    results["revoke_to_deny"].append(fleet_revoke(bench, env, revokes=revokes, replicas=fleet_replicas,
                                                                  log_dir=where / "logs"))
        for database in ("sqlite", "postgresql"):
            if database == "postgresql" and server is None:
                continue
            _say(f"{database}: ready from cold at {fraction:g} of the full state")
            url = server.create_database(migrated=False) if database == "postgresql" else ""
            results["ready_from_cold"].append(ready_from_cold(data_dir / f"cold-{database}", env, database_url=url,
                                                              fraction=fraction))
    return results
