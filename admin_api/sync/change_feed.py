"""One read of the change log per wake for every Watch stream of a process.

A commit wakes every stream of the process at once (admin_api.store.notifier). Were each
to read the change log itself, one change would cost N queries and N pooled connections
(on PostgreSQL, each checkout a pre-ping round trip too), and N streams polling would
read N times per poll interval: at 50 streams the change reached the last stream about a
hundred queries later (bench/watch_reads.py).

The feed keeps the newest changes it read in a bounded window, contiguous in revision.
A stream asks for the changes after its revision:
- inside the window: they come from memory, no query;
- at the window's end: if a newer revision was announced (this process's commits and,
  on PostgreSQL, the other replicas' NOTIFYs), or the window was last read more than
  half a poll interval ago, one stream reads what follows once, the others wait for that
  read and are then served from memory (single flight);
- before the window (a slow stream, or one resuming from further back): it reads the
  change log by itself, exactly as without the feed, so it never delays the others and
  never loses a change; its own read also finds a pruned gap, and Watch then sends a
  snapshot as before.

What a stream gets is the same as its own read would give at that moment: revisions are
gap-free and in commit order (admin_api.store.outbox), a window is only ever extended by
the rows right after its last one (anything else starts a new window), so the changes
after revision N from the window are the change log's changes after N. Filtering (who
may receive what) stays per stream, in Watch and its servicer; the feed only reads.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from itertools import islice

from sqlalchemy import select

from admin_api.db.models import ChangeRecord
from admin_api.store import outbox
from admin_api.store.unit_of_work import Store
from portcullis.sync.v1 import sync_pb2

DEFAULT_WINDOW = 1024      # changes kept: a stream further behind reads by itself
_WAIT_SLICE = 1.0          # a stream waiting for another's read looks again this often


class ChangeFeed:
    def __init__(self, store: Store, *, window: int = DEFAULT_WINDOW) -> None:
        # Weak: the feeds are kept per store in a WeakKeyDictionary, which a strong
        # reference back to its key would keep forever.
        self._store = weakref.ref(store)
        self._changed = threading.Condition()
        self._events: deque[sync_pb2.WatchEvent] = deque(maxlen=window)
        self._tail: int | None = None   # every change up to here was read (in the window, or older than it)
        self._more = False               # the last read was a full batch: more may follow at once
        self._read_at = float("-inf")    # when the last read started (time.monotonic)
        self._reading = False
        self.reads = 0                   # shared reads of the change log (tests, the bench)

    def changes_after(self, revision: int, limit: int, *, poll_interval: float) -> list[sync_pb2.WatchEvent]:
        """The changes after `revision`, oldest first, at most `limit`: the same contract
        as admin_api.sync.watch.changes_after (the first may be later than revision + 1
        when the ones between were pruned)."""
        while True:
            with self._changed:
                served = self._serve(revision, limit, fresh_for=poll_interval / 2)
                if served is not None:
                    return served
                if self._behind(revision):
                    break
                if self._reading:
                    self._changed.wait(_WAIT_SLICE)
                    continue
                self._reading = True
                self._read_at = time.monotonic()
                start = self._tail if self._tail is not None and revision <= self._tail + limit else revision
            try:
                events = changes_after(self._live_store(), start, limit)
            except BaseException:
                with self._changed:
                    self._reading = False
                    self._changed.notify_all()
                raise
            with self._changed:
                self.reads += 1
                self._take(start, events, full=len(events) >= limit)
                if self._tail is not None and revision > self._tail:
                    # Nothing at all after the window, so nothing up to this stream's
                    # revision either: the window starts again there (rather than
                    # reading again and again for it).
                    self._events.clear()
                    self._tail = revision
                self._reading = False
                self._changed.notify_all()
        # Further back than the window: this stream's own read, as without the feed.
        return changes_after(self._live_store(), revision, limit)

    def _live_store(self) -> Store:
        store = self._store()
        assert store is not None, "a stream holds its store while it asks its feed"
        return store

    def _behind(self, revision: int) -> bool:
        return self._tail is not None and revision < self._start() - 1

    def _start(self) -> int:
        assert self._tail is not None
        return self._events[0].revision if self._events else self._tail + 1

    def _serve(self, revision: int, limit: int, *, fresh_for: float) -> list[sync_pb2.WatchEvent] | None:
        """From memory, or None when the change log must be read (by anyone)."""
        if self._tail is None or self._behind(revision) or revision > self._tail:
            return None
        if revision < self._tail:
            skip = revision + 1 - self._start()
            return list(islice(self._events, skip, skip + limit))
        stale = (self._more or self._live_store().notifier.latest > self._tail
                 or time.monotonic() - self._read_at >= fresh_for)
        return None if stale else []

    def _take(self, start: int, events: list[sync_pb2.WatchEvent], *, full: bool) -> None:
        """Add a read of the changes after `start` to the window (one read at a time)."""
        contiguous = start == self._tail and (not events or events[0].revision == start + 1)
        if not contiguous:
            # The first read, one from far ahead of the window, or changes pruned between
            # the window and this read: a new window from here.
            self._events.clear()
            self._tail = start
        self._events.extend(events)
        if events:
            self._tail = events[-1].revision
        self._more = full


def changes_after(store: Store, revision: int, limit: int) -> list[sync_pb2.WatchEvent]:
    """One read of the change log: the changes after `revision`, oldest first."""
    with store.read() as session:
        rows = session.scalars(select(ChangeRecord).where(ChangeRecord.revision > revision)
                               .order_by(ChangeRecord.revision).limit(limit)).all()
        return [_event(row, store) for row in rows]


def _event(row: ChangeRecord, store: Store) -> sync_pb2.WatchEvent:
    if row.op == outbox.UPSERT:
        payload = outbox.open_payload(row, store.config)
        return sync_pb2.WatchEvent(revision=row.revision, upsert=sync_pb2.PolicyEntity.FromString(payload))
    return sync_pb2.WatchEvent(revision=row.revision, delete=sync_pb2.EntityRef.FromString(row.payload))


_feeds: "weakref.WeakKeyDictionary[Store, ChangeFeed]" = weakref.WeakKeyDictionary()
_feeds_lock = threading.Lock()


def of(store: Store, *, window: int = DEFAULT_WINDOW) -> ChangeFeed:
    """The feed every Watch stream on `store` shares (created by the first of them)."""
    with _feeds_lock:
        feed = _feeds.get(store)
        if feed is None:
            feed = _feeds[store] = ChangeFeed(store, window=window)
        return feed
