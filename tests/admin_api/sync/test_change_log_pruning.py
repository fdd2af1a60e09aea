"""Change-log pruning: old rows go, the newest stays, and Watch covers the pruned past
with a snapshot followed by live changes without a gap."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from sqlalchemy import select

from admin_api.app import AdminApp, create_admin_app
from admin_api.db.models import ChangeRecord
from admin_api.db.types import utcnow
from admin_api.sync.pruning import ChangeLogPruner, prune_change_log
from admin_api.sync.watch import WatchConfig
from portcullis.admin.v1 import admin_pb2, admin_pb2_grpc
from portcullis.sync.v1 import sync_pb2, sync_pb2_grpc
from portcullis_shared.settings import MeshSettings, SettingsError

pytestmark = pytest.mark.both_databases

HOUR = timedelta(hours=1)


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AdminApp]:
    monkeypatch.delenv("PORTCULLIS_DATABASE_URL", raising=False)
    app = create_admin_app(MeshSettings(data_dir=tmp_path), grpc_port=0,
                           watch_config=WatchConfig(poll_interval=0.05, heartbeat_interval=60))
    app.start()
    yield app
    app.stop()


@pytest.fixture
def channel(app: AdminApp) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
        yield channel


def _md(path: Path) -> list[tuple[str, str]]:
    return [("authorization", "Bearer " + path.read_text().strip())]


def _create_api(app: AdminApp, channel: grpc.Channel, name: str) -> admin_pb2.Api:
    return admin_pb2_grpc.ApiServiceStub(channel).CreateApi(admin_pb2.CreateApiRequest(
        name=name, version="1.0.0", context="/" + name.lower(), production_endpoint="http://127.0.0.1:8091"),
        metadata=_md(app.settings.admin_token_file))


def _revisions(app: AdminApp) -> list[int]:
    with app.store.read() as session:
        return list(session.scalars(select(ChangeRecord.revision).order_by(ChangeRecord.revision)))


def test_rows_within_the_retention_stay(app, channel):
    _create_api(app, channel, "First")
    before = _revisions(app)
    assert prune_change_log(app.store, HOUR) == 0
    assert _revisions(app) == before


def test_old_rows_go_but_the_newest_always_stays(app, channel):
    _create_api(app, channel, "First")
    newest = _revisions(app)[-1]
    assert prune_change_log(app.store, HOUR, now=utcnow() + 2 * HOUR) == newest - 1
    assert _revisions(app) == [newest]
    assert prune_change_log(app.store, HOUR, now=utcnow() + 2 * HOUR) == 0
    # Revisions keep counting from the counter, not from the rows left.
    _create_api(app, channel, "Second")
    assert _revisions(app) == [newest, newest + 1]


def test_a_replica_behind_the_pruned_log_gets_a_snapshot_then_live_changes(app, channel):
    _create_api(app, channel, "First")
    stale = _revisions(app)[-1]          # where a replica that went away stopped
    _create_api(app, channel, "Second")
    _create_api(app, channel, "Third")
    newest = _revisions(app)[-1]
    prune_change_log(app.store, HOUR, now=utcnow() + 2 * HOUR)
    assert _revisions(app) == [newest]

    stream = sync_pb2_grpc.PolicySyncStub(channel).Watch(
        sync_pb2.WatchRequest(from_revision=stale, replica="test"), metadata=_md(app.settings.sync_token_file))
    try:
        first = next(stream)
        assert first.HasField("snapshot_begin") and first.revision == newest
        entities = []
        for event in stream:
            if event.HasField("snapshot_end"):
                break
            entities += event.snapshot_chunk.entities
        assert sorted(e.api.name for e in entities if e.HasField("api")) == ["First", "Second", "Third"]
        fourth = _create_api(app, channel, "Fourth")
        live = next(event for event in stream if not event.HasField("heartbeat"))
        assert live.revision == newest + 1 and live.upsert.api.id == fourth.id
    finally:
        stream.cancel()


def test_a_replica_at_the_newest_revision_resumes_without_a_snapshot(app, channel):
    _create_api(app, channel, "First")
    newest = _revisions(app)[-1]
    prune_change_log(app.store, HOUR, now=utcnow() + 2 * HOUR)
    stream = sync_pb2_grpc.PolicySyncStub(channel).Watch(
        sync_pb2.WatchRequest(from_revision=newest, replica="test"), metadata=_md(app.settings.sync_token_file))
    try:
        second = _create_api(app, channel, "Second")
        event = next(stream)
        assert event.revision == newest + 1 and event.upsert.api.id == second.id
    finally:
        stream.cancel()


def test_the_pruner_runs_in_the_background(app, channel):
    _create_api(app, channel, "First")
    pruner = ChangeLogPruner(app.store, timedelta(0), interval=0.02)
    pruner.start()
    try:
        deadline = time.monotonic() + 10
        while len(_revisions(app)) > 1:
            assert time.monotonic() < deadline, "the pruner never ran"
            time.sleep(0.02)
    finally:
        pruner.stop()
    assert len(_revisions(app)) == 1


def test_the_app_prunes_with_the_configured_retention(tmp_path, monkeypatch):
    monkeypatch.delenv("PORTCULLIS_DATABASE_URL", raising=False)
    app = create_admin_app(MeshSettings(data_dir=tmp_path, change_log_retention_hours=24), grpc_port=0)
    assert app.pruner.retention == timedelta(hours=24)
    app.db.dispose()


@pytest.mark.parametrize("raw,hours", [("", 168.0), ("24", 24.0), ("0.5", 0.5)])
def test_retention_setting(raw, hours):
    assert MeshSettings.from_env({"PORTCULLIS_CHANGE_LOG_RETENTION_HOURS": raw}).change_log_retention_hours == hours


@pytest.mark.parametrize("raw", ["0", "-1", "a week", "inf"])
def test_retention_setting_refuses_nonsense(raw):
    with pytest.raises(SettingsError, match="PORTCULLIS_CHANGE_LOG_RETENTION_HOURS"):
        MeshSettings.from_env({"PORTCULLIS_CHANGE_LOG_RETENTION_HOURS": raw})
