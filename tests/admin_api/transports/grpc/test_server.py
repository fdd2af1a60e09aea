"""The admin gRPC server over a real socket: auth, error mapping, health and Watch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import delete

from admin_api.app import AdminApp, create_admin_app
from admin_api.db.models import ChangeRecord
from admin_api.store.outbox import current_revision
from admin_api.sync.watch import WatchConfig
from portcullis.admin.v1 import admin_pb2, admin_pb2_grpc
from portcullis.sync.v1 import sync_pb2, sync_pb2_grpc
from portcullis_shared.settings import MeshSettings


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AdminApp]:
    monkeypatch.delenv("PORTCULLIS_DATABASE_URL", raising=False)
    settings = MeshSettings(data_dir=tmp_path)
    app = create_admin_app(settings, grpc_port=0,
                           watch_config=WatchConfig(poll_interval=0.05, heartbeat_interval=0.2, snapshot_chunk_size=2))
    app.start()
    yield app
    app.stop()


@pytest.fixture
def channel(app: AdminApp) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
        yield channel


def _token(path: Path) -> list[tuple[str, str]]:
    return [("authorization", "Bearer " + path.read_text().strip())]


@pytest.fixture
def admin_md(app: AdminApp) -> list[tuple[str, str]]:
    return _token(app.settings.admin_token_file)


@pytest.fixture
def sync_md(app: AdminApp) -> list[tuple[str, str]]:
    return _token(app.settings.sync_token_file)


def _revision(app: AdminApp) -> int:
    """The newest revision: what admin_api wrote at start-up (the default organization, its
    resident key manager, a backend signing key and its throttling policies) and since."""
    with app.store.read() as session:
        return current_revision(session)


def _create_api(channel: grpc.Channel, metadata, name: str = "PizzaShack") -> admin_pb2.Api:
    return admin_pb2_grpc.ApiServiceStub(channel).CreateApi(admin_pb2.CreateApiRequest(
        name=name, version="1.0.0", context="/" + name.lower(), production_endpoint="http://127.0.0.1:8091"),
        metadata=metadata)


def _events_until(stream, predicate) -> list[sync_pb2.WatchEvent]:
    events = []
    for event in stream:
        events.append(event)
        if predicate(event):
            return events
    raise AssertionError(f"stream ended before the expected event: {events}")


def _next_change_or_snapshot(stream) -> sync_pb2.WatchEvent:
    """The next event that is not a heartbeat: admin_api may send heartbeats at any time
    (also while it reads a snapshot), so a test must not expect them at a given place."""
    return _events_until(stream, lambda e: not e.HasField("heartbeat"))[-1]


def test_token_files_are_owner_only_and_hold_no_stored_value(app):
    for path in (app.settings.admin_token_file, app.settings.sync_token_file):
        assert path.stat().st_mode & 0o777 == 0o600
    token = app.settings.admin_token_file.read_text().strip()
    app.db.dispose()
    assert token.encode() not in (app.settings.data_dir / "portcullis.db").read_bytes()


def test_health_needs_no_credential(channel):
    answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("metadata", [
    pytest.param([], id="missing"),
    pytest.param([("authorization", "Bearer pca_wrong")], id="unknown-token"),
    pytest.param([("authorization", "Basic dXNlcjpwdw==")], id="other-scheme"),
])
def test_admin_rpc_rejects_bad_credentials(channel, metadata):
    with pytest.raises(grpc.RpcError) as caught:
        admin_pb2_grpc.ApiServiceStub(channel).ListApis(admin_pb2.ListApisRequest(), metadata=metadata)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_sync_token_cannot_call_admin_rpcs(channel, sync_md):
    with pytest.raises(grpc.RpcError) as caught:
        admin_pb2_grpc.ApiServiceStub(channel).ListApis(admin_pb2.ListApisRequest(), metadata=sync_md)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "PolicySync/Watch only" in caught.value.details()


@pytest.mark.parametrize("who", ["admin", "nobody"])
def test_watch_needs_the_sync_token(channel, admin_md, who):
    metadata = admin_md if who == "admin" else [("authorization", "Bearer pcs_wrong")]
    stream = sync_pb2_grpc.PolicySyncStub(channel).Watch(sync_pb2.WatchRequest(), metadata=metadata)
    with pytest.raises(grpc.RpcError) as caught:
        next(stream)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_admin_errors_map_to_status_codes(channel, admin_md):
    stub = admin_pb2_grpc.ApiServiceStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateApi(admin_pb2.CreateApiRequest(name="x"), metadata=admin_md)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "version" in caught.value.details()
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetApi(admin_pb2.GetApiRequest(id="nope"), metadata=admin_md)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    api = _create_api(channel, admin_md)
    with pytest.raises(grpc.RpcError) as caught:
        stub.ChangeApiLifecycle(admin_pb2.ChangeApiLifecycleRequest(id=api.id, target_state=admin_pb2.Api.RETIRED),
                                metadata=admin_md)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_watch_snapshot_then_live_changes(app, channel, admin_md, sync_md):
    base = _revision(app)
    first = _create_api(channel, admin_md, "First")
    _create_api(channel, admin_md, "Second")
    stream = sync_pb2_grpc.PolicySyncStub(channel).Watch(sync_pb2.WatchRequest(replica="test"), metadata=sync_md)
    snapshot = _events_until(stream, lambda e: e.HasField("snapshot_end"))
    assert snapshot[0].HasField("snapshot_begin")
    assert len({e.revision for e in snapshot}) == 1 and snapshot[0].revision == base + 2
    entities = [entity for e in snapshot if e.HasField("snapshot_chunk") for entity in e.snapshot_chunk.entities]
    # chunk size 2: fourteen entities (nine of them the default throttling policies)
    assert sum(e.HasField("snapshot_chunk") for e in snapshot) == 7
    assert sorted(e.WhichOneof("kind") for e in entities) == ["api", "api", "backend_signing_key", "key_manager",
                                                              "organization"] + ["throttling_policy"] * 9

    admin_pb2_grpc.ApiServiceStub(channel).DeleteApi(admin_pb2.DeleteApiRequest(id=first.id), metadata=admin_md)
    live = _events_until(stream, lambda e: e.HasField("delete"))
    assert live[-1].revision == base + 3
    assert (live[-1].delete.kind, live[-1].delete.id) == (sync_pb2.API, first.id)
    heartbeat = _events_until(stream, lambda e: e.HasField("heartbeat"))[-1]
    assert heartbeat.revision == base + 3
    stream.cancel()


def test_watch_resumes_from_a_revision(app, channel, admin_md, sync_md):
    base = _revision(app)
    _create_api(channel, admin_md, "First")   # revision base + 1
    second = _create_api(channel, admin_md, "Second")  # revision base + 2
    stream = sync_pb2_grpc.PolicySyncStub(channel).Watch(sync_pb2.WatchRequest(from_revision=base + 1),
                                                         metadata=sync_md)
    event = _next_change_or_snapshot(stream)
    assert event.revision == base + 2 and event.upsert.api.id == second.id
    stream.cancel()


@pytest.mark.parametrize("from_revision", [pytest.param(99, id="ahead-of-newest"),
                                           pytest.param(1, id="older-than-retained")])
def test_watch_sends_a_snapshot_when_it_cannot_replay(app, channel, admin_md, sync_md, from_revision):
    base = _revision(app)
    _create_api(channel, admin_md, "First")
    _create_api(channel, admin_md, "Second")
    with app.store.write() as writer:  # as if every revision but the newest had been pruned
        writer.session.execute(delete(ChangeRecord).where(ChangeRecord.revision <= base + 1))
    stream = sync_pb2_grpc.PolicySyncStub(channel).Watch(
        sync_pb2.WatchRequest(from_revision=from_revision), metadata=sync_md)
    first = _next_change_or_snapshot(stream)
    assert first.HasField("snapshot_begin") and first.revision == base + 2
    stream.cancel()


def test_watch_ends_cleanly_when_the_server_stops(tmp_path, monkeypatch):
    monkeypatch.delenv("PORTCULLIS_DATABASE_URL", raising=False)
    app = create_admin_app(MeshSettings(data_dir=tmp_path), grpc_port=0,
                           watch_config=WatchConfig(poll_interval=0.05, heartbeat_interval=60))
    app.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
            stream = sync_pb2_grpc.PolicySyncStub(channel).Watch(
                sync_pb2.WatchRequest(), metadata=_token(app.settings.sync_token_file))
            _events_until(stream, lambda e: e.HasField("snapshot_end"))
            app.stop()
            assert list(stream) == []
            assert stream.code() == grpc.StatusCode.OK
    finally:
        app.stop()


@pytest.mark.parametrize("who", ["admin", "nobody"])
def test_report_usage_needs_the_sync_token(channel, admin_md, who):
    metadata = admin_md if who == "admin" else [("authorization", "Bearer pcs_wrong")]
    with pytest.raises(grpc.RpcError) as caught:
        sync_pb2_grpc.PolicySyncStub(channel).ReportUsage(sync_pb2.UsageReport(reporter="x"), metadata=metadata)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_report_usage_then_read_it(channel, admin_md, sync_md):
    import time

    api = _create_api(channel, admin_md)
    application = admin_pb2_grpc.ApplicationServiceStub(channel).CreateApplication(
        admin_pb2.CreateApplicationRequest(name="Mobile"), metadata=admin_md)
    hour = int(time.time()) // 3600 * 3600
    stub = sync_pb2_grpc.PolicySyncStub(channel)
    stub.ReportUsage(sync_pb2.UsageReport(reporter="authz@h:1/worker-0", counts=[sync_pb2.UsageCount(
        hour_start=hour, application_id=application.id, api_id=api.id, outcome="allow", reason="allowed",
        count=3)]), metadata=sync_md)
    with pytest.raises(grpc.RpcError) as caught:   # a malformed count: the whole report is refused
        stub.ReportUsage(sync_pb2.UsageReport(reporter="r", counts=[sync_pb2.UsageCount(
            hour_start=hour + 1, application_id=application.id, api_id=api.id, outcome="allow",
            reason="allowed", count=1)]), metadata=sync_md)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    usage = admin_pb2_grpc.ApplicationServiceStub(channel).GetApplicationUsage(
        admin_pb2.GetApplicationUsageRequest(id=application.id), metadata=admin_md)
    assert [(u.api_id, u.calls, u.allowed) for u in usage.apis] == [(api.id, 3, 3)]
