"""The transactional outbox: every write appends its change records in its own transaction.

The revision comes from a one-row counter incremented with an UPDATE. That UPDATE locks
the row until commit (on PostgreSQL; SQLite has one writer anyway), so a second writer
waits for the first to commit before it gets the next number: revisions are gap-free and
a reader that sees revision N committed has also seen every revision below N.

A key manager's record carries its introspection client secret in clear (replicas need
it), and a backend signing key's record its private key (replicas sign), so their upsert
payloads are sealed with the KEK before they reach the change log and
opened again when replayed: no secret is at rest in clear (a serialized PolicyEntity
never starts with the ciphertext's version byte, so sealed payloads are recognisable).
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from admin_api import config
from admin_api.crypto import kek
from admin_api.db.models import ChangeRecord, Organization, RevisionCounter
from admin_api.db.types import utcnow
from admin_api.sync_records.entities import EntityRow, entity_kind, policy_entity
from portcullis.sync.v1 import sync_pb2

UPSERT = "upsert"
DELETE = "delete"
# Records that carry a secret in clear: an introspection client secret, a private key.
SEALED_KINDS = frozenset({sync_pb2.KEY_MANAGER, sync_pb2.BACKEND_SIGNING_KEY})


def next_revision(session: Session) -> int:
    session.execute(update(RevisionCounter).where(RevisionCounter.id == 1).values(value=RevisionCounter.value + 1))
    return session.execute(select(RevisionCounter.value).where(RevisionCounter.id == 1)).scalar_one()


def current_revision(session: Session) -> int:
    return session.execute(select(RevisionCounter.value).where(RevisionCounter.id == 1)).scalar_one()


def oldest_retained_revision(session: Session) -> int | None:
    return session.execute(select(ChangeRecord.revision).order_by(ChangeRecord.revision).limit(1)).scalar()


def append(session: Session, row: EntityRow, op: str) -> int:
    """Record that `row` was upserted or deleted; returns the change's revision."""
    kind = entity_kind(row)
    settings = config.of_session(session)
    if op == UPSERT:
        session.flush()  # server-side values (none today) and FK checks before serializing
        payload = policy_entity(row, settings).SerializeToString()
    else:
        payload = sync_pb2.EntityRef(kind=kind, id=row.id).SerializeToString()
    organization_id = row.id if isinstance(row, Organization) else row.organization_id
    revision = next_revision(session)
    if op == UPSERT and kind in SEALED_KINDS and settings.kek is not None:
        payload = settings.kek.encrypt(payload, _aad(revision))
    session.add(ChangeRecord(
        revision=revision,
        organization_id=organization_id,
        entity_kind=sync_pb2.EntityKind.Name(kind),
        entity_id=row.id,
        op=op,
        payload=payload,
        committed_at=utcnow(),
    ))
    return revision


def open_payload(record: ChangeRecord, settings: config.ServiceConfig) -> bytes:
    """The serialized message of a change record, unsealed if it was sealed."""
    if record.payload[:1] == bytes([kek.FORMAT_VERSION]):
        return settings.require_kek().decrypt(record.payload, _aad(record.revision))
    return record.payload


def _aad(revision: int) -> bytes:
    return f"change_log:{revision}".encode()
