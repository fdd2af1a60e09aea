"""Throttling policies: tiers become policies that authz_server enforces.

Every organization gets WSO2's default policies. Tiers that were free labels until now
are mapped: a known default name to that default; any other name to a new policy of that
name with no limit (so nothing starts being refused by a migration), listed in the log
(logger `admin_api.migrations`) so that an admin can give it limits. The change log is
then emptied and the revision moved on, so that every authz_server replica takes a fresh
snapshot (with the policies) on its next Watch.

Revision ID: 0010_throttling_policies
Revises: 0009_api_enforcement
Create Date: 2026-12-01
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

from admin_api.db.types import UtcDateTime

revision = "0010_throttling_policies"
down_revision = "0009_api_enforcement"
branch_labels = None
depends_on = None

ID = sa.String(64)
log = logging.getLogger("admin_api.migrations")

# The defaults as they were when this migration was written (the service's DEFAULTS may
# grow later; a migration must not change with them).
_DEFAULTS = (
    ("SUBSCRIPTION", "Gold", 5000, "Allows 5000 requests per minute"),
    ("SUBSCRIPTION", "Silver", 2000, "Allows 2000 requests per minute"),
    ("SUBSCRIPTION", "Bronze", 1000, "Allows 1000 requests per minute"),
    ("SUBSCRIPTION", "Unlimited", 0, "Allows unlimited requests"),
    ("APPLICATION", "10PerMin", 10, "Allows 10 requests per minute"),
    ("APPLICATION", "20PerMin", 20, "Allows 20 requests per minute"),
    ("APPLICATION", "50PerMin", 50, "Allows 50 requests per minute"),
    ("APPLICATION", "Unlimited", 0, "Allows unlimited requests"),
    ("API", "Unlimited", 0, "Allows unlimited requests"),
)

_policies = sa.table(
    "throttling_policies",
    sa.column("id", ID), sa.column("organization_id", ID), sa.column("name", sa.String), sa.column("kind", sa.String),
    sa.column("request_count", sa.BigInteger), sa.column("unit", sa.String),
    sa.column("burst_request_count", sa.BigInteger), sa.column("burst_unit", sa.String),
    sa.column("stop_on_quota_reach", sa.Boolean), sa.column("description", sa.Text),
    sa.column("created_at", UtcDateTime()), sa.column("updated_at", UtcDateTime()),
)


def upgrade() -> None:
    op.create_table(
        "throttling_policies",
        sa.Column("id", ID, primary_key=True),
        sa.Column("organization_id", ID, sa.ForeignKey("organizations.id"), nullable=False, index=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("request_count", sa.BigInteger(), nullable=False),
        sa.Column("unit", sa.String(10), nullable=False),
        sa.Column("burst_request_count", sa.BigInteger(), nullable=False),
        sa.Column("burst_unit", sa.String(10), nullable=False),
        sa.Column("stop_on_quota_reach", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("organization_id", "kind", "name", name="uq_throttling_policies_org_kind_name"),
    )
    with op.batch_alter_table("apis") as batch:
        batch.add_column(sa.Column("throttling_policy", sa.String(100), nullable=False, server_default=""))
    connection = op.get_bind()
    now = datetime.now(timezone.utc)
    rows = []
    organizations = [row[0] for row in connection.execute(sa.text("SELECT id FROM organizations ORDER BY id"))]
    for organization_id in organizations:
        known = {(kind, name) for kind, name, _, _ in _DEFAULTS}
        for kind, name, count, description in _DEFAULTS:
            rows.append(_row(organization_id, kind, name, count, description, now))
        labels = [("SUBSCRIPTION", "subscriptions", "tier"), ("APPLICATION", "applications", "throttling_tier")]
        for kind, table, column in labels:
            found = connection.execute(
                sa.text(f"SELECT DISTINCT {column} FROM {table} WHERE organization_id = :org ORDER BY {column}"),
                {"org": organization_id})
            for (label,) in found:
                if (kind, label) in known:
                    continue
                known.add((kind, label))
                rows.append(_row(organization_id, kind, label, 0,
                                 "Made by migration 0010 from an existing tier label, with no limit: set its limits",
                                 now))
                log.warning("organization %s: %s tier %r is not a default policy: created %r with no limit "
                            "(PATCH /v1/throttling-policies/{id} to give it limits)", organization_id, kind, label, label)
    if rows:
        op.bulk_insert(_policies, rows)
    if organizations:
        # Replicas resuming from an older revision would miss the policies (they have no
        # change records): with an empty change log and a new revision, they take a snapshot.
        connection.execute(sa.text("DELETE FROM change_log"))
        connection.execute(sa.text("UPDATE revision_counter SET value = value + 1 WHERE id = 1"))


def _row(organization_id: str, kind: str, name: str, count: int, description: str, now: datetime) -> dict:
    return {"id": uuid.uuid4().hex, "organization_id": organization_id, "name": name, "kind": kind,
            "request_count": count, "unit": "MINUTE", "burst_request_count": 0, "burst_unit": "SECOND",
            "stop_on_quota_reach": True, "description": description, "created_at": now, "updated_at": now}


def downgrade() -> None:
    with op.batch_alter_table("apis") as batch:
        batch.drop_column("throttling_policy")
    op.drop_table("throttling_policies")
