"""Audit log of admin changes and denied attempts.

Revision ID: 0005_audit_log
Revises: 0004_backend_jwt
Create Date: 2026-01-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from admin_api.db.types import UtcDateTime

revision = "0005_audit_log"
down_revision = "0004_backend_jwt"
branch_labels = None
depends_on = None

ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "audit_records",
        sa.Column("id", ID, primary_key=True),
        sa.Column("organization_id", ID, sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("credential", sa.String(30), nullable=False),
        sa.Column("method", sa.String(200), nullable=False),
        sa.Column("target_kind", sa.String(40), nullable=False),
        sa.Column("target_id", sa.String(255), nullable=False),
        sa.Column("outcome", sa.String(30), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
    )
    op.create_index("ix_audit_records_org_created", "audit_records", ["organization_id", "created_at", "id"])
    op.create_index("ix_audit_records_org_subject", "audit_records", ["organization_id", "subject"])
    op.create_index("ix_audit_records_org_target", "audit_records", ["organization_id", "target_kind", "target_id"])


def downgrade() -> None:
    op.drop_table("audit_records")
