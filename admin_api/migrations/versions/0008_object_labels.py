"""Labels of admin objects, for tools that manage objects in groups (apply --prune).

Revision ID: 0008_object_labels
Revises: 0007_api_upstream
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from admin_api.db.types import UtcDateTime

revision = "0008_object_labels"
down_revision = "0007_api_upstream"
branch_labels = None
depends_on = None

ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "object_labels",
        sa.Column("id", ID, primary_key=True),
        sa.Column("organization_id", ID, sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("object_id", ID, nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("organization_id", "kind", "object_id", name="uq_object_labels_object"),
    )
    op.create_index("ix_object_labels_org_created", "object_labels", ["organization_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_table("object_labels")
