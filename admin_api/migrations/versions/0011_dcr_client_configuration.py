"""Application keys remember their RFC 7592 client configuration endpoint and sealed
registration access token, so that a registered client is updated and deleted at its
provider. Keys registered before keep "" / NULL: they are updated and deleted here only.

Revision ID: 0011_dcr_client_configuration
Revises: 0010_throttling_policies
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_dcr_client_configuration"
down_revision = "0010_throttling_policies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("application_keys") as batch:
        batch.add_column(sa.Column("registration_client_uri", sa.String(2000), nullable=False, server_default=""))
        batch.add_column(sa.Column("registration_access_token_encrypted", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("application_keys") as batch:
        batch.drop_column("registration_access_token_encrypted")
        batch.drop_column("registration_client_uri")
