"""Usage counts reported by authz_server processes (PolicySync.ReportUsage): one row per
(reporter, hour, application, API, outcome, reason), the reporter's cumulative count."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from admin_api.db.models import ID, Base
from admin_api.db.types import UtcDateTime


class UsageCount(Base):
    __tablename__ = "usage_counts"
    __table_args__ = (Index("ix_usage_counts_application_hour", "application_id", "hour"),
                      Index("ix_usage_counts_hour", "hour"))

    reporter: Mapped[str] = mapped_column(String(200), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    application_id: Mapped[str] = mapped_column(ID, primary_key=True)
    api_id: Mapped[str] = mapped_column(ID, primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16), primary_key=True)
    reason: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ID)
    count: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
