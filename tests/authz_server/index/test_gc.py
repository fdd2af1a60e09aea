"""A large snapshot's compile moves what it built into the GC's permanent generation
every so often (so collections stop rescanning it); small ones and single changes never
touch the collector. `gc.freeze` is replaced here: the test must not freeze pytest."""

from __future__ import annotations

from authz_server.index import policy_index
from authz_server.index.policy_index import PolicyIndex

from ..factories import entity, make_key


def _count_freezes(monkeypatch, every):
    calls = []
    monkeypatch.setattr(policy_index, "_FREEZE_EVERY", every)
    monkeypatch.setattr(policy_index.gc, "freeze", lambda: calls.append(1))
    return calls


def _keys(count):
    return [entity(make_key(f"key-{n}", value=f"pck_value-{n}")) for n in range(count)]


def test_large_snapshot_freezes_periodically_and_at_the_end(monkeypatch):
    calls = _count_freezes(monkeypatch, every=3)
    builder = PolicyIndex.builder()
    for record in _keys(7):
        builder.upsert(record)
    assert len(calls) == 2  # after the 3rd and 6th entity
    index = builder.finish(5)
    assert len(calls) == 3
    assert len(index.api_keys) == 7


def test_small_snapshot_and_single_changes_never_freeze(monkeypatch):
    calls = _count_freezes(monkeypatch, every=10)
    builder = PolicyIndex.builder()
    for record in _keys(4):
        builder.upsert(record)
    index = builder.finish(1)
    for record in _keys(12):
        index = index.with_upsert(record, index.revision + 1)
    assert calls == [] and len(index.api_keys) == 12
