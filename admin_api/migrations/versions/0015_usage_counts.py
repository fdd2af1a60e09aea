"""Usage counts per application and API, reported by authz_server processes.

Revision ID: 0015_usage_counts
Revises: 0014_api_definitions
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from admin_api.db.types import UtcDateTime

revision = "0015_usage_counts"
down_revision = "0014_api_definitions"
branch_labels = None
depends_on = None

ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "usage_counts",
        sa.Column("reporter", sa.String(200), primary_key=True),
        sa.Column("hour", UtcDateTime(), primary_key=True),
        sa.Column("application_id", ID, primary_key=True),
        sa.Column("api_id", ID, primary_key=True),
        sa.Column("outcome", sa.String(16), primary_key=True),
        sa.Column("reason", sa.String(64), primary_key=True),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_usage_counts_application_hour", "usage_counts", ["application_id", "hour"])
    op.create_index("ix_usage_counts_hour", "usage_counts", ["hour"])


def downgrade() -> None:
    op.drop_table("usage_counts")
