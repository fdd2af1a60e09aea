"""PolicySync.Watch as a plain generator of WatchEvents (the gRPC servicer only adds
authentication and cancellation).

From `from_revision` it replays the change log when every change after it is still
retained; otherwise (a new replica, a revision from the future, or one older than the
oldest retained change) it sends a snapshot first. Then it follows new commits: woken at
once by commits in this process and (PostgreSQL, admin_api.store.listener) of the other
replicas, and polling as the safety net. The streams of a process share those reads
(admin_api.sync.change_feed): one read of the change log per wake, not one per stream;
a stream too far behind the shared window reads by itself. A heartbeat
goes out when nothing else was sent for `heartbeat_interval` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass

from admin_api.store.unit_of_work import Store
from admin_api.store import outbox
from admin_api.sync import change_feed, snapshot
from admin_api.sync.change_feed import changes_after as changes_after  # re-exported: one read of the log
from portcullis.sync.v1 import sync_pb2
from portcullis_shared.config import declaration
from portcullis_shared.settings import MeshSettings


@dataclass(frozen=True)
class WatchConfig:
    poll_interval: float = 0.5
    heartbeat_interval: float = declaration(MeshSettings, "sync_heartbeat_seconds").default
    snapshot_chunk_size: int = 500
    replay_batch_size: int = 500
    feed_window: int = change_feed.DEFAULT_WINDOW    # changes the process's streams share in memory


def needs_snapshot(store: Store, from_revision: int) -> bool:
    if from_revision <= 0:
        return True
    with store.read() as session:
        newest = outbox.current_revision(session)
        if from_revision > newest:
            return True
        if from_revision == newest:
            return False
        oldest = outbox.oldest_retained_revision(session)
    return oldest is None or oldest > from_revision + 1


def watch(store: Store, from_revision: int, *, active: Callable[[], bool],
          config: WatchConfig = WatchConfig()) -> Iterator[sync_pb2.WatchEvent]:
    """Events for one replica until `active()` turns false or the notifier is closed."""
    last = from_revision
    feed = change_feed.of(store, window=config.feed_window)
    if needs_snapshot(store, from_revision):
        last = yield from _snapshot(store, config)
    last_sent = time.monotonic()
    while active() and not store.notifier.closed:
        events = feed.changes_after(last, config.replay_batch_size, poll_interval=config.poll_interval)
        if events and events[0].revision != last + 1:
            # Changes this replica still needs were pruned meanwhile: start it over.
            last = yield from _snapshot(store, config)
            last_sent = time.monotonic()
            continue
        for event in events:
            yield event
            last = event.revision
        if events:
            last_sent = time.monotonic()
            continue
        idle = time.monotonic() - last_sent
        if idle >= config.heartbeat_interval:
            yield _heartbeat(store)
            last_sent, idle = time.monotonic(), 0.0
        store.notifier.wait_beyond(last, timeout=min(config.poll_interval, config.heartbeat_interval - idle))


def _heartbeat(store: Store) -> sync_pb2.WatchEvent:
    with store.read() as session:
        newest = outbox.current_revision(session)
    return sync_pb2.WatchEvent(revision=newest, heartbeat=sync_pb2.Heartbeat())


def _snapshot(store: Store, config: WatchConfig) -> Generator[sync_pb2.WatchEvent, None, int]:
    """Yields a snapshot's events and returns its revision. Reading a large state takes
    tens of seconds: chunks go out while it is read, so the replica compiles meanwhile,
    and heartbeats whenever none is ready, so that the replica does not take the silence
    for a lost admin_api."""
    with snapshot.shared(store) as read:
        return (yield from snapshot.events(read, config.snapshot_chunk_size, config.heartbeat_interval,
                                           lambda: _heartbeat(store)))
