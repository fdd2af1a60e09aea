"""The transactional outbox: one change record per changed entity, gap-free revisions."""

from __future__ import annotations

import threading

import pytest

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from admin_api.db import models
from admin_api.db.models import Base
from admin_api.errors import AlreadyExists, InvalidArgument
from admin_api.services import applications
from admin_api.store import outbox
from portcullis.admin.v1 import admin_pb2
from portcullis.sync.v1 import sync_pb2
from tests.admin_api.conftest import ADMIN, create_application, generate_key, published_api

pytestmark = pytest.mark.both_databases


def _changes(store):
    with store.read() as session:
        return session.scalars(select(models.ChangeRecord).order_by(models.ChangeRecord.revision)).all()


def test_migration_matches_models(store):
    with store.db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_every_write_appends_its_change_in_order(store):
    api = published_api(store)
    key = generate_key(store, api.id)
    records = _changes(store)
    assert [r.revision for r in records] == list(range(1, len(records) + 1))
    # The default organization, its resident KM and its nine default throttling policies.
    assert [(r.entity_kind, r.op) for r in records] == [
        ("ORGANIZATION", "upsert"), ("KEY_MANAGER", "upsert")] + [("THROTTLING_POLICY", "upsert")] * 9 + [
        ("API", "upsert"), ("API", "upsert"), ("API_KEY", "upsert")]
    published = sync_pb2.PolicyEntity.FromString(records[-2].payload)
    assert published.api.lifecycle_state == admin_pb2.Api.PUBLISHED
    record = sync_pb2.PolicyEntity.FromString(records[-1].payload).api_key
    assert record.key_hash and record.key_hash != key.value and not record.revoked
    with store.read() as session:
        assert outbox.current_revision(session) == records[-1].revision


def test_failed_write_leaves_no_change_and_no_revision(store):
    before = _changes(store)
    with pytest.raises(InvalidArgument):
        applications.create_application(store, admin_pb2.CreateApplicationRequest(name=""), ADMIN)
    create_application(store)
    create_application(store, name="Again")
    with pytest.raises(AlreadyExists):  # refused inside the write transaction
        create_application(store, name="Again")
    records = _changes(store)
    assert len(records) == len(before) + 2
    assert [r.revision for r in records] == list(range(1, len(records) + 1))


def test_concurrent_writers_get_gap_free_revisions(store):
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for index in range(10):
                create_application(store, name=f"W{worker}-{index}")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    revisions = [r.revision for r in _changes(store)]
    # the default organization, its resident KM, its 9 throttling policies, 60 applications
    assert revisions == list(range(1, 72))
