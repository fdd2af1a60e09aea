"""Key management: key managers, application keys and their consumer secrets, users and
scopes of the resident key manager.

Revision ID: 0002_key_management
Revises: 0001_initial
Create Date: 2026-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from admin_api.db.types import UtcDateTime

revision = "0002_key_management"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

ID = sa.String(64)
URL = sa.String(2000)


def upgrade() -> None:
    op.create_table(
        "key_managers",
        sa.Column("id", ID, primary_key=True),
        sa.Column("organization_id", ID, sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("discovery_url", URL, nullable=False),
        sa.Column("issuer", URL, nullable=False),
        sa.Column("jwks_uri", URL, nullable=False),
        sa.Column("certificate_pem", sa.Text(), nullable=False),
        sa.Column("token_endpoint", URL, nullable=False),
        sa.Column("authorization_endpoint", URL, nullable=False),
        sa.Column("revocation_endpoint", URL, nullable=False),
        sa.Column("introspection_endpoint", URL, nullable=False),
        sa.Column("registration_endpoint", URL, nullable=False),
        sa.Column("userinfo_endpoint", URL, nullable=False),
        sa.Column("introspection_client_id", sa.String(500), nullable=False),
        sa.Column("introspection_client_secret_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("registration_access_token_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("accepts_jwt", sa.Boolean(), nullable=False),
        sa.Column("accepts_reference_tokens", sa.Boolean(), nullable=False),
        sa.Column("token_format_pattern", sa.String(500), nullable=False),
        sa.Column("consumer_key_claim", sa.String(100), nullable=False),
        sa.Column("scopes_claim", sa.String(100), nullable=False),
        sa.Column("allowed_algorithms", sa.JSON(), nullable=False),
        sa.Column("audience", URL, nullable=False),
        sa.Column("leeway_seconds", sa.Integer(), nullable=False),
        sa.Column("consumer_app_creation_enabled", sa.Boolean(), nullable=False),
        sa.Column("key_generation_allowed_roles", sa.JSON(), nullable=False),
        sa.Column("key_generation_denied_roles", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("organization_id", "name", name="uq_key_managers_org_name"),
    )
    op.create_index("ix_key_managers_organization_id", "key_managers", ["organization_id"])
    op.create_table(
        "application_keys",
        sa.Column("id", ID, primary_key=True),
        sa.Column("organization_id", ID, sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("application_id", ID, sa.ForeignKey("applications.id"), nullable=False),
        sa.Column("environment", sa.String(20), nullable=False),
        sa.Column("key_manager_id", ID, sa.ForeignKey("key_managers.id"), nullable=False),
        sa.Column("consumer_key", sa.String(255), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("origin", sa.String(20), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("consumer_key", name="uq_application_keys_consumer_key"),
        sa.UniqueConstraint("application_id", "environment", "key_manager_id",
                            name="uq_application_keys_app_env_km"),
    )
    op.create_index("ix_application_keys_organization_id", "application_keys", ["organization_id"])
    op.create_index("ix_application_keys_application_id", "application_keys", ["application_id"])
    op.create_index("ix_application_keys_key_manager_id", "application_keys", ["key_manager_id"])
    op.create_table(
        "consumer_secrets",
        sa.Column("id", ID, primary_key=True),
        sa.Column("organization_id", ID, sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("application_key_id", ID, sa.ForeignKey("application_keys.id"), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("masked_value", sa.String(40), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_consumer_secrets_secret_hash", "consumer_secrets", ["secret_hash"], unique=True)
    op.create_index("ix_consumer_secrets_organization_id", "consumer_secrets", ["organization_id"])
    op.create_index("ix_consumer_secrets_application_key_id", "consumer_secrets", ["application_key_id"])
    op.create_table(
        "users",
        sa.Column("id", ID, primary_key=True),
        sa.Column("organization_id", ID, sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("username", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("organization_id", "username", name="uq_users_org_username"),
    )
    op.create_index("ix_users_organization_id", "users", ["organization_id"])
    op.create_table(
        "scopes",
        sa.Column("id", ID, primary_key=True),
        sa.Column("organization_id", ID, sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("organization_id", "name", name="uq_scopes_org_name"),
    )
    op.create_index("ix_scopes_organization_id", "scopes", ["organization_id"])


def downgrade() -> None:
    for table in ("scopes", "users", "consumer_secrets", "application_keys", "key_managers"):
        op.drop_table(table)
