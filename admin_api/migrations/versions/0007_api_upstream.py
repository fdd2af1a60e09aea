"""Per-API upstream settings for Envoy (timeouts, CA bundle), deployed over xDS.

Revision ID: 0007_api_upstream
Revises: 0006_path_ownership_report
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_api_upstream"
down_revision = "0006_path_ownership_report"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("apis") as batch:
        batch.add_column(sa.Column("upstream", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("apis") as batch:
        batch.drop_column("upstream")
