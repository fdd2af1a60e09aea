"""The tables of admin_api. Enumerations are stored by their protobuf value name
("PUBLISHED", "PRODUCTION", ...) so that the database reads well and survives
renumbering; nested messages that are only ever read whole (resources, security
schemes, key restrictions) are JSON columns.

Timestamps are UTC (see UtcDateTime). Every entity row carries its organization_id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from admin_api.db.types import UtcDateTime

ID = String(64)


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Api(Base):
    __tablename__ = "apis"
    __table_args__ = (
        UniqueConstraint("base_path", name="uq_apis_base_path"),
        UniqueConstraint("organization_id", "name", "version", name="uq_apis_org_name_version"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(30))
    context: Mapped[str] = mapped_column(String(200))
    base_path: Mapped[str] = mapped_column(String(300))
    production_endpoint: Mapped[str] = mapped_column(String(2000), default="")
    sandbox_endpoint: Mapped[str] = mapped_column(String(2000), default="")
    resources: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    security: Mapped[dict[str, Any]] = mapped_column(JSON)
    subscription_less: Mapped[bool] = mapped_column(Boolean, default=False)
    lifecycle_state: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Application(Base):
    __tablename__ = "applications"
    __table_args__ = (UniqueConstraint("organization_id", "owner", "name", name="uq_applications_org_owner_name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    owner: Mapped[str] = mapped_column(String(200))
    throttling_tier: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Subscription(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("application_id", "api_id", name="uq_subscriptions_application_api"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"))
    api_id: Mapped[str] = mapped_column(ForeignKey("apis.id"), index=True)
    tier: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    api_id: Mapped[str] = mapped_column(ForeignKey("apis.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    environment: Mapped[str] = mapped_column(String(20))
    application_id: Mapped[str | None] = mapped_column(ForeignKey("applications.id"), index=True)
    allowed_ips: Mapped[list[str]] = mapped_column(JSON)
    allowed_referrers: Mapped[list[str]] = mapped_column(JSON)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(20))
    # Lowercase hex SHA-256 of the value; the value itself is never stored.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    masked_value: Mapped[str] = mapped_column(String(40))
    owner: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_by: Mapped[str] = mapped_column(String(200), default="")
    # Not a foreign key: both rows may be deleted together with their API.
    replaced_by: Mapped[str] = mapped_column(ID, default="")


class AdminCredential(Base):
    """A bearer token of the admin API (admin or sync role), stored as its SHA-256."""

    __tablename__ = "admin_credentials"
    __table_args__ = (UniqueConstraint("subject", name="uq_admin_credentials_subject"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    role: Mapped[str] = mapped_column(String(20))
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    subject: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ChangeRecord(Base):
    """The transactional outbox: one row per changed entity, in revision order."""

    __tablename__ = "change_log"
    __table_args__ = (Index("ix_change_log_entity", "entity_kind", "entity_id"),)

    revision: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    organization_id: Mapped[str] = mapped_column(ID)
    entity_kind: Mapped[str] = mapped_column(String(20))   # sync.v1.EntityKind name
    entity_id: Mapped[str] = mapped_column(ID)
    op: Mapped[str] = mapped_column(String(10))            # "upsert" or "delete"
    # Serialized sync.v1.PolicyEntity (upsert) or sync.v1.EntityRef (delete).
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    committed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RevisionCounter(Base):
    """One row (id 1): the newest revision. Writers increment it with an UPDATE, whose
    row lock serializes them, so revisions are gap-free and in commit order."""

    __tablename__ = "revision_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger)
