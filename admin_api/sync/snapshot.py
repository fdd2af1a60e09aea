"""A full, consistent copy of the policy state at one revision."""

from __future__ import annotations

import threading
import traceback
import weakref
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager

from sqlalchemy import select

from admin_api.db import models
from admin_api.db.backend_jwt_models import BackendSigningKey
from admin_api.db.oauth_models import RevokedToken
from admin_api.db.throttling_models import ThrottlingPolicy
from admin_api.db.types import utcnow
from admin_api.store.outbox import current_revision
from admin_api.store.unit_of_work import Store
from admin_api.sync_records.api_keys import fill_api_key_record
from admin_api.sync_records.entities import policy_entity
from admin_api.views.applications import fill_application
from admin_api.views.subscriptions import fill_subscription
from portcullis.sync.v1 import sync_pb2

# Parents before children, so a replica applying in order never sees a dangling id (and
# the throttling policies before the subscriptions, applications and APIs that name them).
_MODELS = (models.Organization, BackendSigningKey, ThrottlingPolicy, models.KeyManager, models.Api, models.Application,
           models.Subscription, models.ApiKey, models.ApplicationKey)

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


def read_into(store: Store, into: "SharedRead") -> None:
    """Every entity and the revision they are at, read in one transaction into `into`
    as the read goes (begin, then batches of entities; the caller finishes it).

    SQLite (WAL) gives a read transaction one snapshot from its first read; PostgreSQL
    needs REPEATABLE READ for that. Entities go to memory, never straight to a client, so
    that streaming a large snapshot to a slow client does not hold the transaction open.
    """
    with store.read() as session:
        if not store.db.is_sqlite:
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        into.begin(current_revision(session))
        batch: list[sync_pb2.PolicyEntity] = []
        for model in _MODELS:
            for entity in _entities(session, model, store.config):
                batch.append(entity)
                if len(batch) >= _HANDOFF_BATCH:
                    into.extend(batch)
                    batch = []
        # Only revocations still worth knowing: replicas drop expired ones anyway.
        batch += [policy_entity(row) for row in session.scalars(
            select(RevokedToken).where(RevokedToken.expires_at > utcnow()).order_by(RevokedToken.id))]
        into.extend(batch)


def load(store: Store) -> tuple[int, list[sync_pb2.PolicyEntity]]:
    """Every entity and the revision they are at, read in one transaction."""
    into = SharedRead()
    read_into(store, into)
    into.finish()
    return into.result()


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


# Entities handed to the streams at a time: each hand-off takes a lock and wakes them, so
# not one by one, yet no more than a chunk (Watch's default size) so that each chunk
# leaves as soon as it is read.
_HANDOFF_BATCH = 500


class ReadAbandoned(Exception):
    """Every stream sharing a read went away before it was complete."""


class SharedRead:
    """One snapshot read, growing while it runs: streams send its entities as they come.

    The reader calls `begin`, `extend` and `finish` or `fail`; streams call `wait_revision`
    and `take`. Entities only ever get appended, so a stream that joins while the read is
    under way still gets all of them from the first.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._revision: int | None = None
        self._entities: list[sync_pb2.PolicyEntity] = []
        self._complete = False
        self._error: BaseException | None = None
        self._abandoned = False

    def begin(self, revision: int) -> None:
        with self._changed:
            self._revision = revision
            self._changed.notify_all()

    def extend(self, entities: list[sync_pb2.PolicyEntity]) -> None:
        with self._changed:
            if self._abandoned:
                raise ReadAbandoned()
            self._entities.extend(entities)
            self._changed.notify_all()

    def finish(self) -> None:
        with self._changed:
            self._complete = True
            self._changed.notify_all()

    def fail(self, error: BaseException) -> None:
        with self._changed:
            if not self._abandoned:
                self._error = error
            self._changed.notify_all()

    def discard(self) -> None:
        """No stream wants this read any more: the reader stops at its next hand-off and
        what was read goes at once. Dropping the error too matters: its traceback holds
        frames that hold this read, a cycle only a full garbage collection would free."""
        with self._changed:
            self._abandoned = True
            self._entities = []
            self._error = None

    def result(self) -> tuple[int, list[sync_pb2.PolicyEntity]]:
        """The revision and every entity of a complete read."""
        with self._changed:
            assert self._complete and self._revision is not None
            return self._revision, self._entities

    def wait_revision(self, timeout: float) -> int | None:
        """The revision once the read knows it; None if `timeout` passed first. Raises
        the read's error."""
        with self._changed:
            self._changed.wait_for(lambda: self._revision is not None or self._error is not None, timeout)
            if self._error is not None:
                raise self._error
            return self._revision

    def take(self, start: int, count: int, timeout: float) -> list[sync_pb2.PolicyEntity] | None:
        """The `count` entities from `start`, or those left once the read is complete
        (none: everything was taken); None if `timeout` passed first. Raises the read's
        error, also when entities are left: a failed read is no snapshot."""
        def ready() -> bool:
            return self._error is not None or self._complete or len(self._entities) >= start + count

        with self._changed:
            self._changed.wait_for(ready, timeout)
            if self._error is not None:
                raise self._error
            if not ready():
                return None
            return self._entities[start:start + count]


class _Sharing:
    def __init__(self) -> None:
        self.read = SharedRead()
        self.streams = 0


_reads: "weakref.WeakKeyDictionary[Store, _Sharing]" = weakref.WeakKeyDictionary()
_reads_lock = threading.Lock()


@contextmanager
def shared(store: Store) -> Iterator[SharedRead]:
    """The read under way for `store`, or a new one started in its own thread.

    Each authz_server worker is a replica, and they all start at once: sharing makes N
    workers cost one read of the whole state instead of N (at a million keys that read
    takes tens of seconds). A read is shared only while it runs; a stream that comes
    later starts a new one. The entities live as long as the streams using them: once
    the last one leaves, an unfinished read stops at its next hand-off and nothing is
    kept.
    """
    with _reads_lock:
        sharing = _reads.get(store)
        leader = sharing is None
        if sharing is None:
            sharing = _reads[store] = _Sharing()
        sharing.streams += 1
    if leader:
        threading.Thread(target=_run, args=(store, sharing), name="watch-snapshot", daemon=True).start()
    try:
        yield sharing.read
    finally:
        with _reads_lock:
            sharing.streams -= 1
            if sharing.streams == 0:
                if _reads.get(store) is sharing:
                    del _reads[store]
                sharing.read.discard()


def _run(store: Store, sharing: _Sharing) -> None:
    try:
        read_into(store, sharing.read)
    except ReadAbandoned:
        return
    except BaseException as exc:  # handed to every stream sharing the read
        _unshare(store, sharing)
        # The traceback still names every line, but its frames let go of their locals:
        # one holding the error would make a cycle through this read, kept until a full
        # garbage collection.
        traceback.clear_frames(exc.__traceback__)
        sharing.read.fail(exc)
        return
    _unshare(store, sharing)
    sharing.read.finish()


def _unshare(store: Store, sharing: _Sharing) -> None:
    """A finished read takes no one new: a stream from now on starts a fresh one."""
    with _reads_lock:
        if _reads.get(store) is sharing:
            del _reads[store]


def events(read: SharedRead, chunk_size: int, idle: float,
           heartbeat: Callable[[], sync_pb2.WatchEvent]) -> Generator[sync_pb2.WatchEvent, None, int]:
    """Yields the snapshot's events as the read goes and returns its revision: Begin as
    soon as the revision is known, each chunk as soon as it is full, a heartbeat after
    `idle` seconds without one to send, End once everything is sent. A failed read
    raises here, so a stream that sent part of a snapshot never ends it."""
    revision = read.wait_revision(idle)
    while revision is None:
        yield heartbeat()
        revision = read.wait_revision(idle)
    yield sync_pb2.WatchEvent(revision=revision, snapshot_begin=sync_pb2.SnapshotBegin())
    sent = 0
    while True:
        entities = read.take(sent, chunk_size, idle)
        if entities is None:
            yield heartbeat()
            continue
        if not entities:
            break
        sent += len(entities)
        yield sync_pb2.WatchEvent(revision=revision, snapshot_chunk=sync_pb2.SnapshotChunk(entities=entities))
    yield sync_pb2.WatchEvent(revision=revision, snapshot_end=sync_pb2.SnapshotEnd())
    return revision
