"""Initial schema: organizations, APIs, applications, subscriptions, API keys, admin
credentials, the change log (transactional outbox) and its revision counter.

Revision ID: 0001_initial
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from admin_api.db.types import UtcDateTime

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "apis",
        sa.Column("id", ID, primary_key=True),
        sa.Column("organization_id", ID, sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("version", sa.String(30), nullable=False),
        sa.Column("context", sa.String(200), nullable=False),
        sa.Column("base_path", sa.String(300), nullable=False),
        sa.Column("production_endpoint", sa.String(2000), nullable=False),
        sa.Column("sandbox_endpoint", sa.String(2000), nullable=False),
        sa.Column("resources", sa.JSON(), nullable=False),
        sa.Column("security", sa.JSON(), nullable=False),
        sa.Column("subscription_less", sa.Boolean(), nullable=False),
        sa.Column("lifecycle_state", sa.String(20), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("base_path", name="uq_apis_base_path"),
        sa.UniqueConstraint("organization_id", "name", "version", name="uq_apis_org_name_version"),
    )
    op.create_index("ix_apis_organization_id", "apis", ["organization_id"])
    op.create_table(
        "applications",
        sa.Column("id", ID, primary_key=True),
        sa.Column("organization_id", ID, sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("throttling_tier", sa.String(100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("organization_id", "owner", "name", name="uq_applications_org_owner_name"),
    )
    op.create_index("ix_applications_organization_id", "applications", ["organization_id"])
    op.create_table(
        "subscriptions",
        sa.Column("id", ID, primary_key=True),
        sa.Column("organization_id", ID, sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("application_id", ID, sa.ForeignKey("applications.id"), nullable=False),
        sa.Column("api_id", ID, sa.ForeignKey("apis.id"), nullable=False),
        sa.Column("tier", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("application_id", "api_id", name="uq_subscriptions_application_api"),
    )
    op.create_index("ix_subscriptions_organization_id", "subscriptions", ["organization_id"])
    op.create_index("ix_subscriptions_api_id", "subscriptions", ["api_id"])
    op.create_table(
        "api_keys",
        sa.Column("id", ID, primary_key=True),
        sa.Column("organization_id", ID, sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("api_id", ID, sa.ForeignKey("apis.id"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("environment", sa.String(20), nullable=False),
        sa.Column("application_id", ID, sa.ForeignKey("applications.id"), nullable=True),
        sa.Column("allowed_ips", sa.JSON(), nullable=False),
        sa.Column("allowed_referrers", sa.JSON(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("masked_value", sa.String(40), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(200), nullable=False),
        sa.Column("replaced_by", ID, nullable=False),
    )
    op.create_index("ix_api_keys_key_hash", "api_keys", ["key_hash"], unique=True)
    op.create_index("ix_api_keys_organization_id", "api_keys", ["organization_id"])
    op.create_index("ix_api_keys_api_id", "api_keys", ["api_id"])
    op.create_index("ix_api_keys_application_id", "api_keys", ["application_id"])
    op.create_table(
        "admin_credentials",
        sa.Column("id", ID, primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("organization_id", ID, sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("subject", name="uq_admin_credentials_subject"),
    )
    op.create_index("ix_admin_credentials_token_hash", "admin_credentials", ["token_hash"], unique=True)
    op.create_table(
        "change_log",
        sa.Column("revision", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("entity_kind", sa.String(20), nullable=False),
        sa.Column("entity_id", ID, nullable=False),
        sa.Column("op", sa.String(10), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("committed_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_change_log_entity", "change_log", ["entity_kind", "entity_id"])
    counter = op.create_table(
        "revision_counter",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(counter, [{"id": 1, "value": 0}])


def downgrade() -> None:
    for table in (
        "revision_counter", "change_log", "admin_credentials", "api_keys",
        "subscriptions", "applications", "apis", "organizations",
    ):
        op.drop_table(table)
