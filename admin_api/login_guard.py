"""Brute force against the resident key manager: per-account and per-client lockout.

Every credential check of the resident key manager (a user's password on the password
grant or the login form, a client's secret at the token, introspection and revocation
endpoints) goes through one guard keyed by what is guessed: the account
(organization, username) or the client (consumer key). After `max_failures` failures in
a row the key is locked for `lockout_seconds`, doubling with each further lockout (at
most an hour) until a success resets it. While locked, the credential is not even
checked: the answer is the same refusal, so a guess cannot be confirmed.

Each failure up to the lockout and each lockout is audited (admin_api.audit); refusals
while locked are logged and counted, not audited one by one (an attacker must not be
able to fill the audit log). The counts are rows of the database (`login_failures`, by
the SHA-256 of the key), each changed under a row lock: every admin_api replica on one
database counts the same guesses and honours the same lockout. Rows of keys not locked and
untouched for a day go (the count restarts, as it would after a success).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Callable

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from admin_api.db.oauth_models import LoginFailure

if TYPE_CHECKING:   # the store's configuration holds the guard
    from admin_api.store.unit_of_work import Store

MAX_LOCKOUT_SECONDS = 3600.0
FORGET_AFTER = timedelta(days=1)   # an unlocked count untouched this long starts again


@dataclass(frozen=True)
class Verdict:
    """What one failure led to: `locked_for` > 0 when it started a lockout."""

    failures: int
    locked_for: float = 0.0


def key_hash(key: tuple[str, ...]) -> str:
    return hashlib.sha256("\x1f".join(key).encode("utf-8")).hexdigest()


@dataclass
class LoginGuard:
    max_failures: int = 5
    lockout_seconds: float = 60.0
    clock: Callable[[], float] = time.time   # seconds since the epoch (a wall clock: replicas share it)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), timezone.utc)

    def locked(self, store: "Store", key: tuple[str, ...]) -> float:
        """Seconds until `key` may try again; 0 when it may now."""
        with store.read() as session:
            until = session.scalar(select(LoginFailure.locked_until).where(LoginFailure.key_hash == key_hash(key)))
        return 0.0 if until is None else max(0.0, (until - self._now()).total_seconds())

    def failed(self, store: "Store", key: tuple[str, ...]) -> Verdict:
        now = self._now()
        digest = key_hash(key)
        with store.write() as writer:
            session = writer.session
            insert = sqlite_insert if store.db.is_sqlite else postgresql_insert
            # The row exists (made here or by another replica), then is locked to commit.
            session.execute(insert(LoginFailure).values(key_hash=digest, failures=0, lockouts=0, locked_until=None,
                                                        touched_at=now).on_conflict_do_nothing())
            state = session.scalars(select(LoginFailure).where(LoginFailure.key_hash == digest)
                                    .with_for_update()).one()
            if (state.locked_until is None or state.locked_until <= now) and now - state.touched_at > FORGET_AFTER:
                state.failures = state.lockouts = 0     # as if forgotten (see forget_stale)
            state.failures += 1
            state.touched_at = now
            if state.failures < self.max_failures:
                return Verdict(state.failures)
            state.lockouts += 1
            locked_for = min(self.lockout_seconds * 2 ** (state.lockouts - 1), MAX_LOCKOUT_SECONDS)
            state.locked_until = now + timedelta(seconds=locked_for)
            failures, state.failures = state.failures, 0
            return Verdict(failures, locked_for)

    def succeeded(self, store: "Store", key: tuple[str, ...]) -> None:
        with store.write() as writer:
            writer.session.execute(delete(LoginFailure).where(LoginFailure.key_hash == key_hash(key)))



def forget_stale(session: Session, now: datetime) -> int:
    """Delete counts neither locked nor touched for FORGET_AFTER (the pruner's round);
    returns how many went."""
    result = session.execute(delete(LoginFailure).where(
        LoginFailure.touched_at < now - FORGET_AFTER,
        or_(LoginFailure.locked_until.is_(None), LoginFailure.locked_until <= now)))
    return result.rowcount or 0
