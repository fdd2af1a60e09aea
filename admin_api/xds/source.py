"""Follows the APIs in the database and publishes a new xDS snapshot whenever one changes.

One thread per admin_api process: it reads every API once, then the change log's API
rows after that (woken at once by commits in this process, polling for those of other
admin_api processes on the same database). The snapshot's version is the revision of
the newest API change, so every admin_api replica names the same state the same way.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import func, select

from admin_api.views.apis import api_pb
from admin_api.db import models
from admin_api.db.models import ChangeRecord
from admin_api.store.unit_of_work import Store
from admin_api.store import outbox
from admin_api.xds.resources import ConfigBuilder
from admin_api.xds.state import XdsState
from portcullis.sync.v1 import sync_pb2

log = logging.getLogger(__name__)

API_KIND = sync_pb2.EntityKind.Name(sync_pb2.API)
BATCH = 1000


class ApiFollower:
    def __init__(self, store: Store, builder: ConfigBuilder, state: XdsState, *, poll_interval: float = 0.5) -> None:
        self._store = store
        self._builder = builder
        self._state = state
        self._poll_interval = poll_interval
        self._stop = threading.Event()
        self._cursor = 0            # every change up to here was looked at
        self._version = 0           # the revision of the newest API change applied
        self._thread = threading.Thread(target=self._run, name="xds-follower", daemon=True)

    def start(self) -> None:
        self.load_all()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._store.notifier.wake()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def load_all(self) -> None:
        started = time.perf_counter()
        with self._store.read() as session:
            cursor = outbox.current_revision(session)
            newest_api_change = session.execute(
                select(func.max(ChangeRecord.revision)).where(ChangeRecord.entity_kind == API_KIND)).scalar()
            self._builder.clear()
            for row in session.scalars(select(models.Api)):
                self._builder.upsert(api_pb(row))
        self._cursor = cursor
        self._version = newest_api_change or 0
        snapshot = self._state.publish(self._builder.build(str(self._version)))
        log.info("xDS: %d deployed APIs, %d clusters at version %s (read in %.0f ms)", snapshot.api_count,
                 snapshot.cluster_count, snapshot.version, (time.perf_counter() - started) * 1000)

    def poll_once(self) -> bool:
        """Apply the API changes committed since the last look; True when there were any."""
        with self._store.read() as session:
            newest = outbox.current_revision(session)
            if newest <= self._cursor:
                return False
            oldest = outbox.oldest_retained_revision(session)
            gap = oldest is not None and oldest > self._cursor + 1
            rows = [] if gap else session.scalars(
                select(ChangeRecord).where(ChangeRecord.revision > self._cursor, ChangeRecord.revision <= newest,
                                           ChangeRecord.entity_kind == API_KIND)
                .order_by(ChangeRecord.revision).limit(BATCH)).all()
            changes = [(row.revision, row.op, row.entity_id, bytes(row.payload)) for row in rows]
        if gap:
            log.warning("xDS: changes after revision %d were pruned before they were read; reading every API",
                        self._cursor)
            self.load_all()
            return True
        # A full batch may stop short of `newest`: continue from its last row next time.
        self._cursor = changes[-1][0] if len(changes) == BATCH else newest
        if not changes:
            return False
        for revision, op, entity_id, payload in changes:
            if op == outbox.UPSERT:
                self._builder.upsert(sync_pb2.PolicyEntity.FromString(payload).api)
            else:
                self._builder.delete(entity_id)
            self._version = revision
        snapshot = self._state.publish(self._builder.build(str(self._version)))
        log.info("xDS: version %s (%d APIs, %d clusters)", snapshot.version, snapshot.api_count,
                 snapshot.cluster_count)
        return True

    def _run(self) -> None:
        while not self._stop.is_set() and not self._store.notifier.closed:
            try:
                if self.poll_once():
                    continue
            except Exception:
                # The Envoys keep the last configuration; the next poll tries again.
                log.exception("xDS: reading API changes failed")
            self._store.notifier.wait_beyond(self._cursor, timeout=self._poll_interval)
