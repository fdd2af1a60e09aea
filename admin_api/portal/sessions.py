"""Portal sessions and pending sign-ins, kept in this admin_api process's memory.

The browser holds only a random session id (an HttpOnly cookie); the server keeps, by the
id's SHA-256, the user's access token, the CSRF token of the session's forms and the
values to show once (a new key's value, shown on the next page and then dropped). A
session ends when its access token expires, after `IDLE_SECONDS` without a request, or
at sign-out. Both tables are bounded: the oldest entries go first. A restart (or another
replica) knows no session: the user signs in again.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from portcullis_shared.credentials import credential_hash

IDLE_SECONDS = 30 * 60
SIGNIN_SECONDS = 10 * 60        # from the sign-in redirect to the callback
MAX_SESSIONS = 10_000
MAX_PENDING_SIGNINS = 10_000


@dataclass
class Session:
    access_token: str
    username: str
    csrf_token: str
    expires_at: float           # the access token's expiry
    last_seen: float
    client_id: str = ""         # the portal's client the token was issued to
    organization_id: str = ""
    shown_once: list[tuple[str, str]] = field(default_factory=list)   # (label, value)
    notices: list[tuple[str, str]] = field(default_factory=list)      # ("ok" | "error", text)

    def show_once(self, label: str, value: str) -> None:
        self.shown_once.append((label, value))

    def take_shown_once(self) -> list[tuple[str, str]]:
        values, self.shown_once = self.shown_once, []
        return values

    def notify(self, kind: str, text: str) -> None:
        self.notices.append((kind, text))

    def take_notices(self) -> list[tuple[str, str]]:
        values, self.notices = self.notices, []
        return values


@dataclass(frozen=True)
class PendingSignin:
    """What the callback needs: the PKCE verifier, and the hash of the browser's binding
    cookie (a code that comes back to another browser is refused)."""

    code_verifier: str
    binding_hash: str
    expires_at: float
    client_id: str = ""         # the portal's client at the user's organization


class SessionStore:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._pending: OrderedDict[str, PendingSignin] = OrderedDict()

    # sessions -------------------------------------------------------------------------

    def create(self, access_token: str, username: str, expires_in: int, client_id: str = "",
               organization_id: str = "") -> tuple[str, Session]:
        """A new session; answers the id for the cookie (never stored itself)."""
        session_id = secrets.token_urlsafe(32)
        now = self._clock()
        session = Session(access_token=access_token, username=username, csrf_token=secrets.token_urlsafe(32),
                          expires_at=now + expires_in, last_seen=now, client_id=client_id,
                          organization_id=organization_id)
        with self._lock:
            self._sessions[credential_hash(session_id)] = session
            _bound(self._sessions, MAX_SESSIONS)
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id or len(session_id) > 100:
            return None
        key = credential_hash(session_id)
        now = self._clock()
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            if session.expires_at <= now or now - session.last_seen > IDLE_SECONDS:
                del self._sessions[key]
                return None
            session.last_seen = now
            self._sessions.move_to_end(key)
            return session

    def end(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            return self._sessions.pop(credential_hash(session_id), None)

    # pending sign-ins -----------------------------------------------------------------

    def begin_signin(self, state: str, code_verifier: str, binding: str, client_id: str = "") -> None:
        pending = PendingSignin(code_verifier, credential_hash(binding), self._clock() + SIGNIN_SECONDS, client_id)
        with self._lock:
            self._pending[state] = pending
            _bound(self._pending, MAX_PENDING_SIGNINS)

    def finish_signin(self, state: str, binding: str | None) -> PendingSignin | None:
        """The pending sign-in of `state`, used up; None when unknown, expired or begun
        in another browser."""
        with self._lock:
            pending = self._pending.pop(state, None)
        if pending is None or not binding or pending.expires_at <= self._clock():
            return None
        if not secrets.compare_digest(pending.binding_hash, credential_hash(binding)):
            return None
        return pending


def _bound(table: OrderedDict[str, object], limit: int) -> None:
    while len(table) > limit:
        table.popitem(last=False)
