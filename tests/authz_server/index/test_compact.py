"""The index keeps its per-entity records small (RSS at a million keys) without changing
what any lookup answers: key hashes as raw digests, subscriptions filed per application."""

import pytest
from portcullis.sync.v1 import sync_pb2

from authz_server.index.api_keys import key_digest_of
from authz_server.index.ids import id_text, stored_id
from portcullis_shared.credentials import credential_digest, credential_hash

from ..factories import PROD_KEY, SANDBOX_KEY, entity, index_of, make_key, make_subscription, pizza_world


def test_digest_and_hex_hash_are_the_same_sha256():
    assert credential_digest(PROD_KEY).hex() == credential_hash(PROD_KEY)
    assert credential_digest("pck_\udcff").hex() == credential_hash("pck_\udcff")  # surrogateescape alike


def test_key_is_found_by_digest_and_by_hex_hash():
    index = index_of(*pizza_world())
    key = index.api_keys.for_digest(credential_digest(PROD_KEY))
    assert key is not None and key.id == "key-prod"
    assert index.api_keys.for_digest(key_digest_of(credential_hash(PROD_KEY))) is key
    assert index.api_keys.for_digest(key_digest_of(credential_hash(PROD_KEY).upper())) is key
    assert index.api_keys.for_digest(credential_digest(SANDBOX_KEY)).id == "key-sandbox"


@pytest.mark.parametrize(
    "text",
    ["", "zz" * 32, "ab" * 31, "ab" * 33, " " + "ab" * 31 + "a", "ab " * 21 + "a", "é" * 64],
    ids=["empty", "not-hex", "short", "long", "leading-space", "spaced", "non-ascii"],
)
def test_anything_but_a_hex_sha256_is_not_a_key_hash(text):
    assert key_digest_of(text) is None


@pytest.mark.parametrize("text", ["ab" * 32, "AB" * 32, "aB" * 32])
def test_a_hex_sha256_in_either_case_is_a_key_hash(text):
    assert key_digest_of(text) == bytes.fromhex("ab" * 32)


def test_a_key_record_with_a_broken_hash_is_dropped_and_its_old_version_with_it():
    records = pizza_world()
    index = index_of(*records)
    broken = make_key()
    broken.key_hash = "ab " * 21 + "a"  # 64 characters, but fromhex would read 21 bytes
    index = index.with_upsert(entity(broken), index.revision + 1)
    assert index.api_keys.for_digest(credential_digest(PROD_KEY)) is None
    assert stored_id("key-prod") not in index.api_keys


def test_subscription_is_filed_under_its_pair_and_unfiled_when_it_moves():
    index = index_of(*pizza_world())
    subscription = index.subscriptions.for_application("app-1", "api-pizza")
    assert (subscription.application_id, subscription.api_id) == subscription.pair == ("app-1", "api-pizza")
    moved = make_subscription(api_id="api-other")
    index = index.with_upsert(entity(moved), index.revision + 1)
    assert index.subscriptions.for_application("app-1", "api-pizza") is None
    assert index.subscriptions.for_application("app-1", "api-other").id == "sub-1"


def test_an_application_keeps_its_other_subscriptions_when_one_goes():
    index = index_of(*pizza_world(), make_subscription("sub-2", api_id="api-other"))
    index = index.with_delete(sync_pb2.EntityRef(kind=sync_pb2.SUBSCRIPTION, id="sub-1"), index.revision + 1)
    assert index.subscriptions.for_application("app-1", "api-pizza") is None
    assert index.subscriptions.for_application("app-1", "api-other").id == "sub-2"
    index = index.with_delete(sync_pb2.EntityRef(kind=sync_pb2.SUBSCRIPTION, id="sub-2"), index.revision + 1)
    assert index.subscriptions.for_application("app-1", "api-other") is None
    assert "app-1" not in index.subscriptions.by_application


def test_a_newer_subscription_of_the_same_pair_survives_the_older_ones_delete():
    index = index_of(*pizza_world(), make_subscription("sub-2"))  # same pair, filed after sub-1
    assert index.subscriptions.for_application("app-1", "api-pizza").id == "sub-2"
    index = index.with_delete(sync_pb2.EntityRef(kind=sync_pb2.SUBSCRIPTION, id="sub-1"), index.revision + 1)
    assert index.subscriptions.for_application("app-1", "api-pizza").id == "sub-2"


def test_a_key_without_restrictions_shares_none_and_a_restricted_key_keeps_each():
    plain = index_of(*pizza_world()).api_keys.for_digest(credential_digest(PROD_KEY))
    assert plain.restrictions is None
    assert (plain.allowed_ips, plain.allowed_referrers, plain.expires_at) == (None, None, None)
    assert not plain.expired(2**40)
    restricted = make_key(allowed_ips=["10.0.0.0/8"], allowed_referrers=["*.example.com/*"], expires_at=100)
    records = pizza_world()
    records[4] = restricted
    key = index_of(*records).api_keys.for_digest(credential_digest(PROD_KEY))
    assert key.allowed_ips is not None and key.allowed_referrers is not None and key.expires_at == 100
    assert key.expired(100) and not key.expired(99)


@pytest.mark.parametrize(
    "ips,referrers,expires_at",
    [(["10.0.0.0/8"], [], 0), ([], ["www.example.com/x"], 0), ([], [], 5)],
    ids=["ips-only", "referrers-only", "expiry-only"],
)
def test_any_one_restriction_is_kept(ips, referrers, expires_at):
    records = pizza_world()
    records[4] = make_key(allowed_ips=ips, allowed_referrers=referrers, expires_at=expires_at)
    key = index_of(*records).api_keys.for_digest(credential_digest(PROD_KEY))
    assert (key.allowed_ips is not None, key.allowed_referrers is not None, key.expires_at) == (
        bool(ips), bool(referrers), expires_at or None)


@pytest.mark.parametrize(
    "text,compact",
    [
        ("0" * 31 + "1", True),
        ("00ab" * 8, True),
        ("ABCD" * 8, False),   # upper case would collide with its lower-case twin
        ("ab" * 15, False),
        ("ab" * 17, False),
        ("key-prod", False),
        ("g" * 32, False),
        ("", False),
    ],
    ids=["leading-zeros", "uuid-hex", "upper-case", "short", "long", "name", "not-hex", "empty"],
)
def test_ids_are_held_compact_only_when_they_round_trip(text, compact):
    assert isinstance(stored_id(text), int) is compact
    assert id_text(stored_id(text)) == text


def test_uuid_ids_are_found_updated_and_deleted_through_their_compact_form():
    key_id, sub_id = "0f" * 16, "00" * 15 + "1a"
    records = pizza_world()
    records[3] = make_subscription(sub_id)
    records[4] = make_key(key_id)
    index = index_of(*records)
    key = index.api_keys.for_digest(credential_digest(PROD_KEY))
    assert key.id == key_id and index.subscriptions.for_application("app-1", "api-pizza").id == sub_id
    index = index.with_upsert(entity(make_key(key_id, revoked=True)), index.revision + 1)
    assert index.api_keys.for_digest(credential_digest(PROD_KEY)).revoked
    index = index.with_delete(sync_pb2.EntityRef(kind=sync_pb2.API_KEY, id=key_id), index.revision + 1)
    index = index.with_delete(sync_pb2.EntityRef(kind=sync_pb2.SUBSCRIPTION, id=sub_id), index.revision + 1)
    assert index.api_keys.for_digest(credential_digest(PROD_KEY)) is None
    assert index.subscriptions.for_application("app-1", "api-pizza") is None
    assert len(index.api_keys) == 1 and len(index.subscriptions) == 0  # the sandbox key stays


def test_the_texts_of_compact_ids_are_remembered_within_a_bound():
    from authz_server.index import ids

    values = [stored_id(f"{number:032x}") for number in range(ids._TEXTS_MAX + 10)]
    assert all(isinstance(value, int) for value in values)
    texts = [id_text(value) for value in values]
    assert texts == [f"{number:032x}" for number in range(ids._TEXTS_MAX + 10)]
    assert 0 < len(ids._TEXTS) <= ids._TEXTS_MAX
    assert id_text(values[0]) is id_text(values[0])   # remembered once made again
