"""Backend JWT: per-API configuration and the signing keys synced to authz_server.

Revision ID: 0004_backend_jwt
Revises: 0003_resident_oauth
Create Date: 2026-01-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from admin_api.db.types import UtcDateTime

revision = "0004_backend_jwt"
down_revision = "0003_resident_oauth"
branch_labels = None
depends_on = None

ID = sa.String(64)


def upgrade() -> None:
    with op.batch_alter_table("apis") as batch:
        batch.add_column(sa.Column("backend_jwt", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("pass_authorization_header", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    op.create_table(
        "backend_signing_keys",
        sa.Column("id", ID, primary_key=True),
        sa.Column("algorithm", sa.String(10), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("private_key_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("activated_at", UtcDateTime(), nullable=False),
        sa.Column("retired_at", UtcDateTime(), nullable=True),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("backend_signing_keys")
    with op.batch_alter_table("apis") as batch:
        batch.drop_column("pass_authorization_header")
        batch.drop_column("backend_jwt")
