"""Recording audit records in the transaction of the change they describe.

The Dispatcher opens `recording(entry)` around a changing RPC; the Store's write
transactions call `in_transaction(session)`, which appends the entry's record (once per
call) just before the change commits, so a change without its record cannot commit.
For an RPC that creates its target, the id is that of the first new row of the target's
table. A denied attempt is recorded in a transaction of its own (`record_denial`).
Records hold identifiers only, never request bodies, key values, tokens or secrets.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from admin_api.db import models
from admin_api.db.audit_models import AuditRecord
from admin_api.db.oauth_models import SigningKey
from admin_api.db.types import utcnow
from admin_api.metrics import AUDIT_RECORDS

if TYPE_CHECKING:
    from admin_api.access.caller import Caller
    from admin_api.store.unit_of_work import Store

SUCCEEDED = "SUCCEEDED"
PERMISSION_DENIED = "PERMISSION_DENIED"

# Where a created target's id is found: its table, by target kind.
CREATED_MODELS: dict[str, type[Any]] = {
    "api": models.Api,
    "application": models.Application,
    "subscription": models.Subscription,
    "api_key": models.ApiKey,
    "application_key": models.ApplicationKey,
    "consumer_secret": models.ConsumerSecret,
    "key_manager": models.KeyManager,
    "user": models.User,
    "scope": models.Scope,
    "signing_key": SigningKey,
    "organization": models.Organization,
}


@dataclass(frozen=True)
class Entry:
    caller: Caller
    method: str          # RPC full name, or an OAuth2 endpoint such as "oauth2/revoke"
    target_kind: str
    target_id: str = ""  # empty: the entity the call creates (found in the transaction)


@dataclass
class _Pending:
    entry: Entry
    recorded: bool = False


_current: ContextVar[_Pending | None] = ContextVar("portcullis_audit_entry", default=None)


@contextmanager
def recording(entry: Entry) -> Iterator[None]:
    """Make the write transactions of this call (in this thread) record `entry`."""
    token = _current.set(_Pending(entry))
    try:
        yield
    finally:
        _current.reset(token)


@contextmanager
def in_transaction(session: Session) -> Iterator[None]:
    """Wraps the body of a write transaction: appends the current call's record before commit."""
    pending = _current.get()
    if pending is None or pending.recorded:
        yield
        return
    created: list[str] = []
    model = CREATED_MODELS.get(pending.entry.target_kind) if not pending.entry.target_id else None

    def collect(_session: Session, instance: object) -> None:
        if model is not None and isinstance(instance, model) and not created:
            created.append(str(inspect(instance).identity[0]))

    event.listen(session, "pending_to_persistent", collect)
    try:
        yield
        session.flush()
        append(session, pending.entry, SUCCEEDED, target_id=pending.entry.target_id or (created[0] if created else ""))
        pending.recorded = True
    finally:
        event.remove(session, "pending_to_persistent", collect)


def record_denial(store: "Store", entry: Entry, detail: str) -> None:
    """Record a refused attempt; the refused change itself was never made."""
    with store.db.write_session() as session, session.begin():
        append(session, entry, PERMISSION_DENIED, target_id=entry.target_id, detail=detail)


def append(session: Session, entry: Entry, outcome: str, *, target_id: str, detail: str = "",
           organization_id: str | None = None) -> None:
    """Add the record to the caller's organization's log, or to `organization_id`'s (a
    change a default-organization admin makes for another organization is in both)."""
    caller = entry.caller
    # Counted once the record is committed (a rolled-back change leaves no record to count).
    event.listen(session, "after_commit", lambda _session: AUDIT_RECORDS.labels(outcome).inc(), once=True)
    session.add(AuditRecord(
        id=uuid.uuid4().hex, organization_id=organization_id or caller.organization_id, created_at=utcnow(), subject=caller.subject[:255],
        roles=sorted(role.value for role in caller.roles), credential=caller.credential.value,
        method=entry.method[:200], target_kind=entry.target_kind, target_id=target_id[:255],
        outcome=outcome, detail=detail[:2000]))
