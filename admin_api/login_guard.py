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
able to fill the audit log). The state is per admin_api process: with R replicas an
attacker gets at most R × `max_failures` guesses per lockout period.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

MAX_LOCKOUT_SECONDS = 3600.0
MAX_TRACKED = 100_000   # keys remembered at most; the oldest unlocked ones go first


@dataclass
class _State:
    failures: int = 0
    lockouts: int = 0
    locked_until: float = 0.0
    touched: float = 0.0


@dataclass(frozen=True)
class Verdict:
    """What one failure led to: `locked_for` > 0 when it started a lockout."""

    failures: int
    locked_for: float = 0.0


@dataclass
class LoginGuard:
    max_failures: int = 5
    lockout_seconds: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _states: dict[tuple[str, ...], _State] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def locked(self, key: tuple[str, ...]) -> float:
        """Seconds until `key` may try again; 0 when it may now."""
        with self._lock:
            state = self._states.get(key)
            return max(0.0, state.locked_until - self.clock()) if state is not None else 0.0

    def failed(self, key: tuple[str, ...]) -> Verdict:
        with self._lock:
            now = self.clock()
            state = self._states.get(key)
            if state is None:
                self._forget_some(now)
                state = self._states[key] = _State()
            state.failures += 1
            state.touched = now
            if state.failures < self.max_failures:
                return Verdict(state.failures)
            state.lockouts += 1
            locked_for = min(self.lockout_seconds * 2 ** (state.lockouts - 1), MAX_LOCKOUT_SECONDS)
            state.locked_until = now + locked_for
            failures, state.failures = state.failures, 0
            return Verdict(failures, locked_for)

    def succeeded(self, key: tuple[str, ...]) -> None:
        with self._lock:
            self._states.pop(key, None)

    def _forget_some(self, now: float) -> None:
        if len(self._states) < MAX_TRACKED:
            return
        unlocked = sorted((s.touched, k) for k, s in self._states.items() if s.locked_until <= now)
        for _, key in unlocked[: max(1, len(unlocked) // 10)]:
            del self._states[key]
