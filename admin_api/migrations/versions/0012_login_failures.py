"""Failed-login counters of the resident key manager move from each admin_api process's
memory to the database, so that replicas share one count and one lockout per account or
client.

Revision ID: 0012_login_failures
Revises: 0011_dcr_client_configuration
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from admin_api.db.types import UtcDateTime

revision = "0012_login_failures"
down_revision = "0011_dcr_client_configuration"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("key_hash", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("lockouts", sa.Integer(), nullable=False),
        sa.Column("locked_until", UtcDateTime(), nullable=True),
        sa.Column("touched_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_login_failures_touched_at", "login_failures", ["touched_at"])


def downgrade() -> None:
    op.drop_index("ix_login_failures_touched_at", table_name="login_failures")
    op.drop_table("login_failures")
