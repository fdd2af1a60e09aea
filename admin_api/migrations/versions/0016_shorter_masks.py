"""Masked credentials no longer longer than the mask allows.

Until this revision a masked value showed everything up to a credential's first "_" and
four characters more, so an identity provider's client_secret with a late "_" was kept
whole as its masked_value. This cuts every stored mask to what `mask()` shows now:
Portcullis's own prefix and four characters, or four characters. Not undone by the
downgrade: that would store the secrets again.

Revision ID: 0016_shorter_masks
Revises: 0015_usage_counts
Create Date: 2026-12-04
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0016_shorter_masks"
down_revision = "0015_usage_counts"
branch_labels = None
depends_on = None

ELLIPSIS = "…"
VISIBLE = 4
# The rule of portcullis_shared.credentials.mask, written out: a migration must not change
# when that module does.
_OWN_PREFIX = re.compile(r"pc[a-z]{1,4}_")


def shortened(masked: str) -> str:
    """A stored mask cut to its prefix of ours and four characters (it never grows)."""
    visible = masked[:-len(ELLIPSIS)] if masked.endswith(ELLIPSIS) else masked
    own = _OWN_PREFIX.match(visible)
    prefix = own.group(0) if own else ""
    return prefix + visible[len(prefix):][:VISIBLE] + ELLIPSIS


def upgrade() -> None:
    connection = op.get_bind()
    for table in ("consumer_secrets", "api_keys"):
        rows = connection.execute(sa.text(f"SELECT id, masked_value FROM {table}")).all()
        for row_id, masked in rows:
            cut = shortened(masked)
            if cut != masked:
                connection.execute(sa.text(f"UPDATE {table} SET masked_value = :masked WHERE id = :id"),
                                   {"masked": cut, "id": row_id})


def downgrade() -> None:
    """Nothing to undo: the cut characters are gone, as they should be."""
