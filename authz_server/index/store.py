"""The current policy index of this replica, swapped atomically by the one sync writer.

Requests read `store.current` (one attribute read, no lock) and keep that index for the
whole decision. The sync thread builds every new index off to the side and then swaps the
reference, so a request never sees half a snapshot or half a change.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Iterable

from portcullis.sync.v1 import sync_pb2

from authz_server.index.policy_index import PolicyIndex

log = logging.getLogger(__name__)


class RevisionGap(Exception):
    """A change skipped revisions: the replica must resume from its last applied one."""

    def __init__(self, applied: int, received: int) -> None:
        super().__init__(f"received revision {received} after {applied}: revisions {applied + 1}..{received - 1} are missing")
        self.applied = applied
        self.received = received


class PolicyStore:
    def __init__(self) -> None:
        self._index: PolicyIndex | None = None
        self._write_lock = threading.Lock()  # writers only; readers never take it
        self._on_ready: list[Callable[[], None]] = []
        self._listeners: list[Callable[[PolicyIndex | None, PolicyIndex], None]] = []

    @property
    def current(self) -> PolicyIndex | None:
        """The index to decide from; None until the first snapshot (policy_not_ready)."""
        return self._index

    @property
    def ready(self) -> bool:
        return self._index is not None

    @property
    def revision(self) -> int:
        index = self._index
        return 0 if index is None else index.revision

    def on_ready(self, callback: Callable[[], None]) -> None:
        """Call `callback` once the first snapshot is applied (at once if it already is)."""
        with self._write_lock:
            if self._index is None:
                self._on_ready.append(callback)
                return
        callback()

    def add_listener(self, listener: Callable[[PolicyIndex | None, PolicyIndex], None]) -> None:
        """Call `listener(previous, current)` after every swap, on the writer's thread.

        For runtime caches that follow the policy (e.g. the JWKS refresher); a listener
        must be quick and must not raise (an exception is logged and ignored).
        """
        self._listeners.append(listener)

    def _notify(self, previous: PolicyIndex | None, current: PolicyIndex) -> None:
        for listener in list(self._listeners):
            try:
                listener(previous, current)
            except Exception:
                log.exception("policy listener %r failed", listener)

    def prune(self, now: float) -> int:
        """Drop revocations of tokens that have expired since (same revision); returns how many."""
        with self._write_lock:
            index = self._index
            if index is None:
                return 0
            pruned = index.without_expired_revocations(now)
            self._index = pruned
        return len(index.revoked_tokens) - len(pruned.revoked_tokens)

    def apply_snapshot(self, entities: Iterable[sync_pb2.PolicyEntity], revision: int) -> None:
        """Replace the whole state. A snapshot is authoritative even at a lower revision
        (admin_api's database was reset or restored): the server chose to send it."""
        self.install_snapshot(PolicyIndex.from_snapshot(entities, revision))

    def install_snapshot(self, index: PolicyIndex) -> None:
        """Replace the whole state with an index compiled from a snapshot (see apply_snapshot)."""
        revision = index.revision
        with self._write_lock:
            previous = self._index
            self._index = index
            callbacks, self._on_ready = self._on_ready, []
        if previous is not None and revision < previous.revision:
            log.warning("snapshot at revision %d replaces state at revision %d", revision, previous.revision)
        log.info("policy snapshot applied: revision=%d %s", revision,
                 " ".join(f"{name}={len(table)}" for name, table in index.tables()))
        for callback in callbacks:
            callback()
        self._notify(previous, index)

    def apply_upsert(self, entity: sync_pb2.PolicyEntity, revision: int) -> bool:
        return self._apply_change(revision, lambda index: index.with_upsert(entity, revision))

    def apply_delete(self, ref: sync_pb2.EntityRef, revision: int) -> bool:
        return self._apply_change(revision, lambda index: index.with_delete(ref, revision))

    def _apply_change(self, revision: int, change: Callable[[PolicyIndex], PolicyIndex]) -> bool:
        """True when applied; False for a change at or below the applied revision (a replay).

        Raises RevisionGap when revisions were skipped, and RuntimeError before any
        snapshot (a change has nothing to apply to).
        """
        with self._write_lock:
            index = self._index
            if index is None:
                raise RuntimeError("a change arrived before any snapshot")
            if revision <= index.revision:
                return False
            if revision != index.revision + 1:
                raise RevisionGap(index.revision, revision)
            current = change(index)
            self._index = current
        self._notify(index, current)
        return True
