"""The table of synced kinds: every EntityKind has exactly one table, each row travels in
the PolicyEntity field of its kind, and a row of any other table is refused, never sent
as an API key (what the old converter's fallback did with any row it did not know)."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from admin_api.db import models
from admin_api.store import outbox
from admin_api.sync_records.entities import SYNCED, UnknownEntityRow, entity_kind, policy_entity
from portcullis.sync.v1 import sync_pb2

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


def test_every_entity_kind_has_one_table_and_one_field() -> None:
    kinds = [synced.kind for synced in SYNCED.values()]
    assert sorted(kinds) == sorted(value for value in sync_pb2.EntityKind.values()
                                   if value != sync_pb2.ENTITY_KIND_UNSPECIFIED)
    fields = {field.number for field in sync_pb2.PolicyEntity.DESCRIPTOR.oneofs_by_name["kind"].fields}
    assert set(kinds) == fields  # each kind's number is its PolicyEntity field's


@pytest.mark.parametrize("row", [
    models.Organization(id="acme", name="Acme", created_at=NOW),
    models.Application(id="app", organization_id="default", name="Mobile", owner="alice", throttling_tier="Unlimited",
                       description="", created_at=NOW, updated_at=NOW),
    models.Subscription(id="sub", organization_id="default", application_id="app", api_id="api", tier="Gold",
                        status="ACTIVE", created_at=NOW, updated_at=NOW),
], ids=lambda row: type(row).__name__)
def test_a_row_travels_in_the_field_of_its_kind(row: object) -> None:
    entity = policy_entity(row)
    field = sync_pb2.PolicyEntity.DESCRIPTOR.fields_by_name[entity.WhichOneof("kind")]
    assert field.number == entity_kind(row)
    assert getattr(entity, field.name).id == row.id


API_KEY_SHAPED = SimpleNamespace(  # every attribute an API key record reads, but no ApiKey
    id="k", organization_id="default", api_id="api", key_hash="ab" * 32, environment="PRODUCTION",
    application_id="", allowed_ips=[], allowed_referrers=[], expires_at=None, status="ACTIVE")


@pytest.mark.parametrize("row", [
    models.User(id="u", organization_id="default", username="bob", password_hash="x", roles=[],
                created_at=NOW, updated_at=NOW),
    models.Scope(id="s", organization_id="default", name="read", description="", roles=[],
                 created_at=NOW, updated_at=NOW),
    API_KEY_SHAPED,
], ids=["User", "Scope", "api-key-shaped"])
def test_a_row_of_an_unsynced_table_is_refused(row: object) -> None:
    with pytest.raises(UnknownEntityRow, match=type(row).__name__):
        policy_entity(row)
    with pytest.raises(UnknownEntityRow):
        entity_kind(row)


def test_a_write_recording_an_unsynced_row_commits_nothing(store) -> None:
    with store.read() as session:
        before = outbox.current_revision(session)
    with pytest.raises(UnknownEntityRow), store.write() as writer:
        writer.upsert(models.User(id="u", organization_id="default", username="bob", password_hash="x", roles=[],
                                  created_at=NOW, updated_at=NOW))
    with store.read() as session:
        assert outbox.current_revision(session) == before
        assert session.scalar(select(func.count()).select_from(models.User).where(models.User.id == "u")) == 0
