"""The audit log of admin changes: one append-only row per change or denied attempt.

Only identifiers are recorded (who, which RPC, which entity, the outcome): never a
request body, a key value, a token or a secret.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from admin_api.db.models import ID, Base
from admin_api.db.types import UtcDateTime


class AuditRecord(Base):
    __tablename__ = "audit_records"
    __table_args__ = (
        Index("ix_audit_records_org_created", "organization_id", "created_at", "id"),
        Index("ix_audit_records_org_subject", "organization_id", "subject"),
        Index("ix_audit_records_org_target", "organization_id", "target_kind", "target_id"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)   # when it happened
    subject: Mapped[str] = mapped_column(String(255))
    roles: Mapped[list[str]] = mapped_column(JSON)
    credential: Mapped[str] = mapped_column(String(30))         # caller.Credential value
    method: Mapped[str] = mapped_column(String(200))            # RPC full name, or an OAuth2 endpoint
    target_kind: Mapped[str] = mapped_column(String(40))
    target_id: Mapped[str] = mapped_column(String(255), default="")
    outcome: Mapped[str] = mapped_column(String(30))            # AuditRecord.Outcome name
    detail: Mapped[str] = mapped_column(Text, default="")       # the denial's message
