"""The index is one table per entity kind: every kind the sync protocol carries has a
table, a change copies only the table it touches, and a record that cannot be compiled
leaves nothing of its entity behind."""

from __future__ import annotations

from portcullis.sync.v1 import sync_pb2

from authz_server.index.policy_index import _BY_ENTITY, _BY_REF_KIND, PolicyIndex
from authz_server.index.table import Table

from ..factories import entity, index_of, make_application, make_key, pizza_world


def test_every_entity_kind_of_the_sync_protocol_has_a_table():
    oneof = sync_pb2.PolicyEntity.DESCRIPTOR.oneofs_by_name["kind"]
    assert {field.name for field in oneof.fields} == set(_BY_ENTITY)
    ref_kinds = {value.number for value in sync_pb2.EntityKind.DESCRIPTOR.values if value.number}
    assert ref_kinds == set(_BY_REF_KIND)


def test_each_table_is_named_once_and_files_its_own_kind():
    index = PolicyIndex.empty()
    names = [name for name, _ in index.tables()]
    assert len(names) == len(set(names)) == len(_BY_ENTITY)
    for name, table in index.tables():
        assert isinstance(table, Table) and len(table) == 0
        assert _BY_ENTITY[table.entity] == name and _BY_REF_KIND[table.ref_kind] == name


def test_a_change_copies_only_the_table_it_touches():
    index = index_of(*pizza_world())
    changed = index.with_upsert(entity(make_application("app-2")), index.revision + 1)
    assert changed.revision == index.revision + 1
    assert "app-2" in changed.applications and "app-2" not in index.applications
    for name, table in changed.tables():
        if name != "applications":
            assert table is getattr(index, name), name


def test_a_record_that_cannot_be_compiled_drops_the_entity_it_replaces():
    index = index_of(*pizza_world())
    broken = make_key("key-prod", value="pck_other")
    broken.key_hash = "not a sha-256"
    changed = index.with_upsert(entity(broken), index.revision + 1)
    assert len(changed.api_keys) == len(index.api_keys) - 1
    assert all(key.id != "key-prod" for key in changed.api_keys.values())
