"""Path ownership: report existing APIs that break the new base-path rules.

No schema change and nothing is deleted: base paths that nest across organizations, or
within one between different APIs, or that lie outside their organization's `/t/<id>`
paths, were accepted before this revision; each is logged as a WARNING (logger
`admin_api.path_ownership`) so that its owners can move one of the two. admin_api logs
the same report at every start while any remains; authz_server already leaves APIs
outside their organization's paths out of routing.

Revision ID: 0006_path_ownership_report
Revises: 0005_audit_log
Create Date: 2026-12-01
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

from admin_api.services import path_ownership

revision = "0006_path_ownership_report"
down_revision = "0005_audit_log"
branch_labels = None
depends_on = None

log = logging.getLogger("admin_api.path_ownership")


def upgrade() -> None:
    rows = op.get_bind().execute(sa.text(
        "SELECT id, organization_id, name, version, lifecycle_state, base_path FROM apis")).all()
    lines = path_ownership.report(rows)
    for line in lines:
        log.warning("path ownership (migration report): %s", line)
    if lines:
        log.warning("path ownership: %d existing conflict(s); new and changed APIs must follow the rule", len(lines))


def downgrade() -> None:
    pass
