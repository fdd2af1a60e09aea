"""APIs keep the OpenAPI document they were imported from (ApiDefinition), for the
developer portal and other readers.

Revision ID: 0014_api_definitions
Revises: 0013_organization_self_signup
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from admin_api.db.types import UtcDateTime

revision = "0014_api_definitions"
down_revision = "0013_organization_self_signup"
branch_labels = None
depends_on = None

ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "api_definitions",
        sa.Column("api_id", ID, sa.ForeignKey("apis.id"), primary_key=True),
        sa.Column("organization_id", ID, sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("spec_version", sa.String(30), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
    )
    op.create_index("ix_api_definitions_organization_id", "api_definitions", ["organization_id"])


def downgrade() -> None:
    op.drop_table("api_definitions")
