"""The table of throttling policies (synced to every authz_server, which enforces them).

Subscriptions (`tier`), applications (`throttling_tier`), APIs and their resources
(`throttling_policy`) name a policy of the right kind of their organization; the name is
the reference, as in WSO2 API Manager, so a policy's name and kind never change.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from admin_api.db.models import ID, Base
from admin_api.db.types import UtcDateTime


class ThrottlingPolicy(Base):
    __tablename__ = "throttling_policies"
    __table_args__ = (UniqueConstraint("organization_id", "kind", "name", name="uq_throttling_policies_org_kind_name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))                      # SUBSCRIPTION, APPLICATION or API
    request_count: Mapped[int] = mapped_column(BigInteger, default=0)  # 0: no limit
    unit: Mapped[str] = mapped_column(String(10), default="MINUTE")    # SECOND ... MONTH
    burst_request_count: Mapped[int] = mapped_column(BigInteger, default=0)
    burst_unit: Mapped[str] = mapped_column(String(10), default="SECOND")
    stop_on_quota_reach: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
