"""Migration 0016 cuts masks that showed a whole secret, and leaves right ones alone."""

from __future__ import annotations

import sqlalchemy as sa

from admin_api.migrations import upgrade

LEAKED = "dVPTQImTOpw4x25TfYHQeNZmqXOSCx_x"


def test_masks_that_showed_a_secret_are_cut_and_right_ones_kept(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0015_usage_counts")
    with engine.begin() as connection:
        # The rows' key and application need not exist for what the migration reads.
        connection.execute(sa.text("PRAGMA foreign_keys = OFF"))
        rows = {"s-leaked": LEAKED + "…", "s-own": "pcsec_abcd…", "s-short": "ab…"}
        for row_id, masked in rows.items():
            connection.execute(sa.text(
                "INSERT INTO consumer_secrets (id, organization_id, application_key_id, secret_hash, masked_value, "
                "description, created_at) VALUES (:id, 'o', 'k', :hash, :masked, '', '2026-12-04 00:00:00')"),
                {"id": row_id, "hash": row_id.ljust(64, "0"), "masked": masked})
    upgrade(engine)
    with engine.connect() as connection:
        stored = dict(connection.execute(sa.text("SELECT id, masked_value FROM consumer_secrets")).all())
    assert stored == {"s-leaked": "dVPT…", "s-own": "pcsec_abcd…", "s-short": "ab…"}
    engine.dispose()
