"""An API's OpenAPI document (ApiDefinition in admin.proto): one row per API that has one.

Kept beside the API, not in the policy snapshot: authz_server never needs it (it
describes the API; the API's resources are what is enforced)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from admin_api.db.models import ID, Base
from admin_api.db.types import UtcDateTime


class ApiDefinition(Base):
    __tablename__ = "api_definitions"

    api_id: Mapped[str] = mapped_column(ForeignKey("apis.id"), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    document: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(8))           # "json" or "yaml"
    spec_version: Mapped[str] = mapped_column(String(30))
    title: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str] = mapped_column(String(200))
