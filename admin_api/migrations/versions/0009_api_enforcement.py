"""An API's enforcement: ENFORCE (every existing API) or DRY_RUN.

Revision ID: 0009_api_enforcement
Revises: 0008_object_labels
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_api_enforcement"
down_revision = "0008_object_labels"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("apis") as batch:
        batch.add_column(sa.Column("enforcement", sa.String(16), nullable=False, server_default="ENFORCE"))


def downgrade() -> None:
    with op.batch_alter_table("apis") as batch:
        batch.drop_column("enforcement")
