"""Two admin_api replicas (each its own engine, notifier and change listener) on one real
PostgreSQL: revisions stay gap-free and in commit order across them, and a Watch served by
one replica resuming from revision N sees every change the other one commits, woken by
LISTEN/NOTIFY rather than by its poll."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from admin_api.app import open_store
from admin_api.db import models
from admin_api.store import outbox
from admin_api.store.listener import ChangeListener
from admin_api.store.unit_of_work import Store
from admin_api.db.types import utcnow
from admin_api.sync.pruning import PRUNE_LOCK_KEY, prune_change_log
from admin_api.sync.watch import WatchConfig, watch
from portcullis.sync.v1 import sync_pb2
from tests.admin_api.conftest import create_application

WRITERS_PER_REPLICA = 3
WRITES_PER_WRITER = 12


@pytest.fixture
def replicas(postgres_server) -> Iterator[tuple[Store, Store, ChangeListener]]:
    url = postgres_server.create_database()
    first, second = open_store(url), open_store(url)
    listener = ChangeListener(first.db.engine, first.notifier, wait_seconds=0.2)
    listener.start()
    assert listener.wait_listening(30)
    yield first, second, listener
    listener.stop()
    first.notifier.close()
    for store in (first, second):
        store.db.dispose()
    postgres_server.drop_database(url)


class Follower:
    """A Watch on `store` from `revision`, consumed on a thread into a queue."""

    def __init__(self, store: Store, revision: int, config: WatchConfig) -> None:
        self.events: queue.Queue[sync_pb2.WatchEvent] = queue.Queue()
        self._active = True
        self._thread = threading.Thread(target=self._run, args=(store, revision, config), daemon=True)
        self._thread.start()

    def _run(self, store: Store, revision: int, config: WatchConfig) -> None:
        for event in watch(store, revision, active=lambda: self._active, config=config):
            self.events.put(event)

    def changes_until(self, revision: int, timeout: float) -> list[sync_pb2.WatchEvent]:
        got: list[sync_pb2.WatchEvent] = []
        while not got or got[-1].revision < revision:
            event = self.events.get(timeout=timeout)
            if not event.HasField("heartbeat"):
                got.append(event)
        return got

    def stop(self, store: Store) -> None:
        self._active = False
        store.notifier.wake()
        self._thread.join(10)


def _current(store: Store) -> int:
    with store.read() as session:
        return outbox.current_revision(session)


def test_concurrent_writes_through_two_replicas_are_gap_free_and_a_watch_skips_none(replicas):
    first, second, _ = replicas
    start = _current(first)
    follower = Follower(first, start, WatchConfig(poll_interval=0.2, heartbeat_interval=5))
    errors: list[BaseException] = []
    created: list[str] = []

    def write(store: Store, worker: str) -> None:
        try:
            for index in range(WRITES_PER_WRITER):
                created.append(create_application(store, name=f"{worker}-{index}").id)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(store, f"r{r}w{w}"))
               for r, store in enumerate((first, second)) for w in range(WRITERS_PER_REPLICA)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    end = _current(second)
    total = 2 * WRITERS_PER_REPLICA * WRITES_PER_WRITER
    assert end == start + total
    with second.read() as session:
        revisions = session.scalars(select(models.ChangeRecord.revision).where(
            models.ChangeRecord.revision > start).order_by(models.ChangeRecord.revision)).all()
    assert revisions == list(range(start + 1, end + 1))

    events = follower.changes_until(end, timeout=30)
    follower.stop(first)
    assert [e.revision for e in events] == list(range(start + 1, end + 1))
    assert sorted(e.upsert.application.id for e in events) == sorted(created)


def test_a_commit_on_the_other_replica_wakes_the_watch_before_its_poll(replicas):
    first, second, _ = replicas
    start = _current(first)
    # Polling every 120 s: only the NOTIFY from the other replica can bring the change sooner.
    follower = Follower(first, start, WatchConfig(poll_interval=120, heartbeat_interval=300))
    try:
        application = create_application(second, name="Elsewhere")
        events = follower.changes_until(start + 1, timeout=60)
    finally:
        follower.stop(first)
    assert [(e.revision, e.upsert.application.id) for e in events] == [(start + 1, application.id)]


def test_a_rolled_back_write_takes_no_revision(replicas):
    first, second, _ = replicas
    start = _current(first)
    with pytest.raises(RuntimeError):
        with second.write() as writer:
            writer.upsert(models.Organization(id="ghost", name="Ghost", created_at=utcnow()))
            raise RuntimeError("abandoned")
    create_application(first, name="After")
    assert _current(second) == start + 1
    with first.read() as session:
        assert session.get(models.Organization, "ghost") is None


def test_while_one_replica_prunes_the_other_skips_its_round(replicas):
    first, second, _ = replicas
    create_application(first, name="Old")
    with first.db.write_session() as session, session.begin():
        session.execute(select(func.pg_advisory_xact_lock(PRUNE_LOCK_KEY)))   # first is "pruning"
        assert prune_change_log(second, timedelta(0)) == 0
    with first.read() as session:
        assert len(session.scalars(select(models.ChangeRecord.revision)).all()) > 1
    assert prune_change_log(second, timedelta(0)) > 0
    with first.read() as session:
        assert session.scalars(select(models.ChangeRecord.revision)).all() == [_current(first)]
