"""Pruning, every 10 minutes: the change log (rows older than the retention go, the
newest row always stays) and the resident key manager's expired tokens and codes.

Keeping the newest row means the log never looks empty, so a replica at the newest
revision still resumes without a snapshot. A replica asking for a revision older than the
oldest retained row gets a snapshot from Watch (watch.needs_snapshot), and one whose next
changes vanish while it streams starts over with one too, so pruning never leaves a gap.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from admin_api.db.models import ChangeRecord
from admin_api.db.types import utcnow
from admin_api import login_guard
from admin_api.oauth import tokens
from admin_api.store.unit_of_work import Store

log = logging.getLogger(__name__)

# How often the pruner runs: retention is counted in hours, so a few minutes late is fine.
PRUNE_INTERVAL_SECONDS = 600.0
# PostgreSQL advisory lock held by the replica pruning (released at its commit), so that
# several admin_api replicas on one database prune once, not all at the same moment.
PRUNE_LOCK_KEY = 0x706F7274_70727531   # "portpru1"


def prune_change_log(store: Store, retention: timedelta, now: datetime | None = None) -> int:
    """Delete change records committed before `now - retention`, except the newest one;
    returns how many went."""
    cutoff = (now or utcnow()) - retention
    with store.write() as writer:
        session = writer.session
        if not store.db.is_sqlite and not session.execute(
                select(func.pg_try_advisory_xact_lock(PRUNE_LOCK_KEY))).scalar():
            return 0    # another replica is pruning right now: once is enough
        newest = session.execute(select(func.max(ChangeRecord.revision))).scalar()
        if newest is None:
            return 0
        result = session.execute(delete(ChangeRecord).where(ChangeRecord.committed_at < cutoff,
                                                            ChangeRecord.revision < newest))
        return result.rowcount or 0


def prune_oauth_tokens(store: Store, now: datetime | None = None) -> int:
    """Delete the resident key manager's expired tokens, codes and revocation records, and
    the failed-login counts nobody touched for a day (admin_api.login_guard)."""
    now = now or utcnow()
    with store.write() as writer:
        return tokens.prune_expired(writer, now) + login_guard.forget_stale(writer.session, now)


class ChangeLogPruner:
    """A daemon thread that prunes the change log and expired OAuth2 tokens every
    `interval` seconds."""

    def __init__(self, store: Store, retention: timedelta, interval: float = PRUNE_INTERVAL_SECONDS) -> None:
        self._store = store
        self.retention = retention
        self._interval = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="change-log-pruner", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            self.prune_once()

    def prune_once(self) -> None:
        """One round; a busy or briefly unreachable database: the next round tries again."""
        try:
            pruned = prune_change_log(self._store, self.retention)
        except Exception:
            log.exception("change-log pruning failed")
        else:
            if pruned:
                log.info("pruned %d change-log rows older than %s", pruned, self.retention)
        try:
            expired = prune_oauth_tokens(self._store)
        except Exception:
            log.exception("pruning expired OAuth2 tokens failed")
        else:
            if expired:
                log.info("pruned %d expired OAuth2 tokens, codes and revocation records", expired)
