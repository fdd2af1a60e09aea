"""Labels of admin objects (labels.proto): one row per labelled object."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from admin_api.db.models import ID, Base
from admin_api.db.types import UtcDateTime


class ObjectLabels(Base):
    __tablename__ = "object_labels"
    __table_args__ = (
        UniqueConstraint("organization_id", "kind", "object_id", name="uq_object_labels_object"),
        Index("ix_object_labels_org_created", "organization_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    kind: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(ID)
    labels: Mapped[dict[str, str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
