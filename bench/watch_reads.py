"""How many database statements one change costs a replica serving N Watch streams.

`python -m bench.watch_reads [--streams 10,50] [--changes 20]`: in this process, an admin
store on SQLite and (where installed) on PostgreSQL, N `watch` generators consumed on
threads as the gRPC servicer would (no transport), then one write at a time, each waiting
until every stream has it. SQLAlchemy event hooks count, per change: the reads of the
change log, every other statement, and the pool checkouts (each one a pre-ping round trip
on PostgreSQL). Then the same counts for a second of idle streams (the poll safety net).
"""

from __future__ import annotations

import argparse
import json
import queue
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event

from admin_api.access.caller import Caller, Role
from admin_api.app import open_store
from admin_api.services import applications
from admin_api.store import outbox
from admin_api.store.unit_of_work import Store
from admin_api.sync.watch import WatchConfig, watch
from portcullis.admin.v1 import admin_pb2
from tests.postgres_server import PostgresServer, find_bin_dir

ADMIN = Caller(subject="bench", organization_id="default", role=Role.ADMIN)
IDLE_SECONDS = 2.0


class StatementCounter:
    """Counts what `engine` executes, by kind, while `counting` is set."""

    def __init__(self, store: Store) -> None:
        self.counts: Counter[str] = Counter()
        self.counting = False
        self._lock = threading.Lock()
        event.listen(store.db.engine, "before_cursor_execute", self._on_execute)
        event.listen(store.db.engine.pool, "checkout", self._on_checkout)

    def _add(self, kind: str) -> None:
        if self.counting:
            with self._lock:
                self.counts[kind] += 1

    def _on_execute(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        text = " ".join(statement.split()).lower()
        if text.startswith("select") and "from change_log" in text:
            self._add("change_log_reads")
        elif text.startswith("select") and "from revision_counter" in text:
            self._add("revision_reads")
        else:
            self._add("other_statements")

    def _on_checkout(self, *_args: Any) -> None:
        self._add("pool_checkouts")

    @contextmanager
    def measuring(self) -> Iterator[Counter[str]]:
        with self._lock:
            self.counts = Counter()
        self.counting = True
        try:
            yield self.counts
        finally:
            self.counting = False


class _Stream:
    def __init__(self, store: Store, revision: int, config: WatchConfig) -> None:
        self.events: queue.Queue[int] = queue.Queue()
        self.active = True
        self.thread = threading.Thread(target=self._run, args=(store, revision, config), daemon=True)
        self.thread.start()

    def _run(self, store: Store, revision: int, config: WatchConfig) -> None:
        for item in watch(store, revision, active=lambda: self.active, config=config):
            if not item.HasField("heartbeat"):
                self.events.put(item.revision)

    def wait_for(self, revision: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.events.get(timeout=max(0.01, deadline - time.monotonic())) < revision:
            pass


def measure(store: Store, streams: int, changes: int) -> dict[str, Any]:
    counter = StatementCounter(store)
    with store.read() as session:
        start = outbox.current_revision(session)
    config = WatchConfig(poll_interval=0.5, heartbeat_interval=60.0)
    watches = [_Stream(store, start, config) for _ in range(streams)]
    time.sleep(0.3)   # every stream started and waiting
    try:
        with counter.measuring() as per_change:
            for n in range(changes):
                revision = _write(store, f"reads-{streams}-{n}")
                for each in watches:
                    each.wait_for(revision)
        time.sleep(0.2)
        with counter.measuring() as idle:
            time.sleep(IDLE_SECONDS)
    finally:
        for each in watches:
            each.active = False
        store.notifier.wake()
        for each in watches:
            each.thread.join(5)
    row: dict[str, Any] = {"streams": streams, "changes": changes}
    for kind in ("change_log_reads", "revision_reads", "other_statements", "pool_checkouts"):
        row[f"{kind}_per_change"] = round(per_change[kind] / changes, 1)
    row["idle_change_log_reads_per_second"] = round(idle["change_log_reads"] / IDLE_SECONDS, 1)
    row["idle_pool_checkouts_per_second"] = round(idle["pool_checkouts"] / IDLE_SECONDS, 1)
    return row


def _write(store: Store, name: str) -> int:
    applications.create_application(store, admin_pb2.CreateApplicationRequest(name=name), ADMIN)
    with store.read() as session:
        return outbox.current_revision(session)


def run(streams: tuple[int, ...], changes: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in streams:
            store = open_store(f"sqlite:///{Path(tmp) / f'reads-{count}.db'}")
            try:
                rows.append({"database": "sqlite", **measure(store, count, changes)})
            finally:
                store.notifier.close()
                store.db.dispose()
    bin_dir = find_bin_dir()
    if bin_dir is None:
        return rows
    server = PostgresServer(bin_dir).init().start()
    try:
        server.wait_ready()
        for count in streams:
            url = server.create_database(migrated=False)
            store = open_store(url)
            try:
                rows.append({"database": "postgresql", **measure(store, count, changes)})
            finally:
                store.notifier.close()
                store.db.dispose()
    finally:
        server.destroy()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", default="10,50")
    parser.add_argument("--changes", type=int, default=20)
    args = parser.parse_args()
    for row in run(tuple(int(n) for n in args.streams.split(",")), args.changes):
        print(json.dumps(row))


if __name__ == "__main__":
    main()
