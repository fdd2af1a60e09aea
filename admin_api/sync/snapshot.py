"""A full, consistent copy of the policy state at one revision."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator

from sqlalchemy import select

from admin_api.convert import fill_api_key_record, fill_application, fill_subscription, policy_entity
from admin_api.db import models
from admin_api.db.backend_jwt_models import BackendSigningKey
from admin_api.db.oauth_models import RevokedToken
from admin_api.db.types import utcnow
from admin_api.services.store import Store
from admin_api.sync.outbox import current_revision
from portcullis.sync.v1 import sync_pb2

# Parents before children, so a replica applying in order never sees a dangling id.
_MODELS = (models.Organization, BackendSigningKey, models.KeyManager, models.Api, models.Application, models.Subscription,
           models.ApiKey, models.ApplicationKey)

# The bulk kinds (a million rows each at full scale) are read as plain Core rows: the
# converters only read attributes, and a Row has them by column name, so the records are
# the same while the ORM's per-row object and identity-map work (most of a snapshot's
# time) is skipped. The few rows of the other kinds keep the ORM path.
_CORE_MODELS = {models.Application, models.Subscription, models.ApiKey}
_CORE_BATCH = 5_000


def _entities(session, model, config) -> Iterator[sync_pb2.PolicyEntity]:
    if model not in _CORE_MODELS:
        for row in session.scalars(select(model).order_by(model.id)):
            yield policy_entity(row, config)
        return
    kind, fill = _CORE_FILLS[model]
    table = model.__table__
    columns = [table.c[name] for name in _CORE_COLUMNS[model]] if model in _CORE_COLUMNS else [table]
    result = session.execute(select(*columns).order_by(table.c.id),
                             execution_options={"yield_per": _CORE_BATCH})
    for row in result:
        entity = sync_pb2.PolicyEntity()
        fill(getattr(entity, kind), row)
        yield entity


def load(store: Store) -> tuple[int, list[sync_pb2.PolicyEntity]]:
    """Every entity and the revision they are at, read in one transaction.

    SQLite (WAL) gives a read transaction one snapshot from its first read; PostgreSQL
    needs REPEATABLE READ for that. Entities are loaded into memory so that streaming a
    large snapshot to a slow client does not hold the transaction open.
    """
    with store.read() as session:
        if not store.db.is_sqlite:
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        revision = current_revision(session)
        entities = [entity for model in _MODELS for entity in _entities(session, model, store.config)]
        # Only revocations still worth knowing: replicas drop expired ones anyway.
        entities += [policy_entity(row) for row in session.scalars(
            select(RevokedToken).where(RevokedToken.expires_at > utcnow()).order_by(RevokedToken.id))]
    return revision, entities


_CORE_FILLS = {
    models.Application: ("application", fill_application),
    models.Subscription: ("subscription", fill_subscription),
    models.ApiKey: ("api_key", fill_api_key_record),
}


# Only what the record carries: an API key's created_at, revoked_at, name and owner are
# for the admin view (parsing two unused timestamps a row cost seconds at 1M keys).
_CORE_COLUMNS = {
    models.ApiKey: ("id", "organization_id", "api_id", "key_hash", "environment", "application_id", "allowed_ips",
                    "allowed_referrers", "expires_at", "status"),
}


class _Flight:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: tuple[int, list[sync_pb2.PolicyEntity]] | None = None
        self.error: BaseException | None = None


_flights: "weakref.WeakKeyDictionary[Store, _Flight]" = weakref.WeakKeyDictionary()
_flights_lock = threading.Lock()


def load_shared(store: Store) -> tuple[int, list[sync_pb2.PolicyEntity]]:
    """`load`, shared by replicas that ask while a load is under way: each authz_server
    worker is a replica, and they all start at once, so N workers cost one read of the
    whole state instead of N (at a million keys that read takes minutes). Nothing is kept
    once the read is handed out; a caller that joins gets a consistent snapshot at the
    revision the read saw, and Watch then follows every change after it."""
    with _flights_lock:
        flight = _flights.get(store)
        leader = flight is None
        if leader:
            flight = _flights[store] = _Flight()
    if leader:
        try:
            flight.result = load(store)
        except BaseException as exc:
            flight.error = exc
        finally:
            with _flights_lock:
                _flights.pop(store, None)
            flight.done.set()
    else:
        flight.done.wait()
    if flight.error is not None:
        raise flight.error
    assert flight.result is not None
    return flight.result


def events(revision: int, entities: list[sync_pb2.PolicyEntity], chunk_size: int) -> Iterator[sync_pb2.WatchEvent]:
    yield sync_pb2.WatchEvent(revision=revision, snapshot_begin=sync_pb2.SnapshotBegin())
    for start in range(0, len(entities), chunk_size):
        chunk = sync_pb2.SnapshotChunk(entities=entities[start:start + chunk_size])
        yield sync_pb2.WatchEvent(revision=revision, snapshot_chunk=chunk)
    yield sync_pb2.WatchEvent(revision=revision, snapshot_end=sync_pb2.SnapshotEnd())
