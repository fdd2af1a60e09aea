"""Organizations say whether anyone may sign up on the developer portal (as a
subscriber): off for every organization until an admin turns it on.

Revision ID: 0013_organization_self_signup
Revises: 0012_login_failures
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_organization_self_signup"
down_revision = "0012_login_failures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organizations") as batch:
        batch.add_column(sa.Column("self_signup", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("organizations") as batch:
        batch.drop_column("self_signup")
