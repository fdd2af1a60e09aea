"""Wakes this process's Watch and xDS streams when another admin_api replica commits.

On PostgreSQL every write transaction sends `NOTIFY portcullis_changes, '<revision>'`
(delivered by the server at commit, never for a rolled-back transaction); one thread per
process LISTENs on a connection of its own and hands each revision to the
ChangeNotifier, so a change written through any replica reaches every stream at once.
Notifications are only a wake-up: the streams still read the change log (one read for
all of a process's Watch streams, admin_api.sync.change_feed), and still poll it
(WatchConfig.poll_interval; a poll reuses a shared read less than half an interval old),
so a notification lost while this connection was down delays a change by at most one
and a half polls, never drops it. SQLite has one process per
file: nothing to listen to there.
"""

from __future__ import annotations

import logging
import threading

import psycopg
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from admin_api.store.notifier import ChangeNotifier

log = logging.getLogger(__name__)

CHANNEL = "portcullis_changes"
_RECONNECT_SECONDS = (0.5, 1.0, 2.0, 5.0)


def announce(session: Session, revision: int) -> None:
    """Inside a write transaction on PostgreSQL: tell the listening replicas, at commit,
    that revisions up to `revision` exist."""
    session.execute(text("SELECT pg_notify(:channel, :revision)"), {"channel": CHANNEL, "revision": str(revision)})


def conninfo(engine: Engine) -> str:
    """The libpq connection string of a postgresql+psycopg engine."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class ChangeListener:
    """A daemon thread that LISTENs for commits of every replica and wakes `notifier`."""

    def __init__(self, engine: Engine, notifier: ChangeNotifier, *, wait_seconds: float = 1.0) -> None:
        self._conninfo = conninfo(engine)
        self._notifier = notifier
        self._wait_seconds = wait_seconds       # how soon stop() is noticed
        self._stopping = threading.Event()
        self._listening = threading.Event()
        self._thread = threading.Thread(target=self._run, name="change-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wait_listening(self, timeout: float) -> bool:
        """True once the LISTEN is in place (tests, and start-up logs)."""
        return self._listening.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                self._listen()
                failures = 0
            except psycopg.Error as exc:
                self._listening.clear()
                delay = _RECONNECT_SECONDS[min(failures, len(_RECONNECT_SECONDS) - 1)]
                failures += 1
                if failures == 1:
                    log.warning("change listener: %s; polling only until it reconnects", exc)
                self._stopping.wait(delay)

    def _listen(self) -> None:
        with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as connection:
            connection.execute(f"LISTEN {CHANNEL}")
            self._listening.set()
            # Whatever was committed while this connection was down: the streams re-read.
            self._notifier.wake()
            while not self._stopping.is_set():
                for notice in connection.notifies(timeout=self._wait_seconds):
                    self._notifier.notify(_revision(notice.payload))


def _revision(payload: str) -> int:
    try:
        return int(payload)
    except ValueError:
        return 0    # not ours: a wake-up all the same
