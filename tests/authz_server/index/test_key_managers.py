"""Key managers, application keys and revocations in the policy index and the store."""

import logging

import pytest
from portcullis.sync.v1 import sync_pb2

from authz_server.index import PolicyStore
from authz_server.index.key_managers import compile_key_manager
from portcullis_shared.clock_leeway import MAX_LEEWAY_SECONDS

from ..factories import entity, index_of
from ..oauth import ISSUER, make_application_key, make_key_manager


def _revoked(jti="jti-1", expires=2_000, org="default"):
    return sync_pb2.RevokedTokenRecord(id=jti, organization_id=org, key_manager_id="km-idp", expires_at_unix=expires)


def test_key_manager_by_issuer_is_per_organization():
    index = index_of(make_key_manager(), make_key_manager("km-acme", organization_id="acme"))
    assert index.key_managers.for_issuer("default", ISSUER).id == "km-idp"
    assert index.key_managers.for_issuer("acme", ISSUER).id == "km-acme"
    assert index.key_managers.for_issuer("other", ISSUER) is None


def test_issuer_change_moves_the_lookup():
    index = index_of(make_key_manager())
    index = index.with_upsert(entity(make_key_manager(issuer="https://new")), 2)
    assert index.key_managers.for_issuer("default", ISSUER) is None
    assert index.key_managers.for_issuer("default", "https://new").id == "km-idp"


def test_shared_issuer_prefers_smaller_id_and_survives_a_delete(caplog):
    with caplog.at_level(logging.WARNING):
        index = index_of(make_key_manager("km-b"), make_key_manager("km-a", name="A"))
    assert index.key_managers.for_issuer("default", ISSUER).id == "km-a"
    index = index.with_delete(sync_pb2.EntityRef(kind=sync_pb2.KEY_MANAGER, id="km-a"), 2)
    assert index.key_managers.for_issuer("default", ISSUER).id == "km-b"


def test_reference_token_managers_are_kept_in_a_stable_order_and_follow_changes():
    index = index_of(
        make_key_manager("km-z", name="Z", issuer="z", accepts_reference=True),
        make_key_manager("km-p", name="P", issuer="p", accepts_reference=True, pattern="^pct_.*$"),
        make_key_manager("km-a", name="A", issuer="a", accepts_reference=True),
        make_key_manager("km-jwt", name="J", issuer="j"),
    )
    assert [km.id for km in index.key_managers.accepting_reference_tokens("default")] == ["km-p", "km-a", "km-z"]
    index = index.with_upsert(entity(make_key_manager("km-a", name="A", issuer="a")), 2)
    assert [km.id for km in index.key_managers.accepting_reference_tokens("default")] == ["km-p", "km-z"]
    index = index.with_delete(sync_pb2.EntityRef(kind=sync_pb2.KEY_MANAGER, id="km-p"), 3)
    index = index.with_delete(sync_pb2.EntityRef(kind=sync_pb2.KEY_MANAGER, id="km-z"), 4)
    assert index.key_managers.accepting_reference_tokens("default") == ()


def test_unrelated_change_shares_the_key_manager_maps():
    from ..factories import make_application

    index = index_of(make_key_manager(accepts_reference=True))
    after = index.with_upsert(entity(make_application("app-9")), 2)
    assert after.key_managers.reference is index.key_managers.reference


def test_application_key_lookup_by_org_key_manager_and_consumer_key():
    index = index_of(make_application_key())
    assert index.application_keys.for_client("default", "km-idp", "pcc_client-one").application_id == "app-1"
    assert index.application_keys.for_client("acme", "km-idp", "pcc_client-one") is None
    assert index.application_keys.for_client("default", "km-other", "pcc_client-one") is None
    index = index.with_upsert(entity(make_application_key(consumer_key="pcc_new")), 2)
    assert index.application_keys.for_client("default", "km-idp", "pcc_client-one") is None
    index = index.with_delete(sync_pb2.EntityRef(kind=sync_pb2.APPLICATION_KEY, id="ak-1"), 3)
    assert index.application_keys.for_client("default", "km-idp", "pcc_new") is None


def test_revocation_applies_until_exp_plus_the_largest_leeway_and_is_pruned_after():
    """Regression (issue 14): pruned (and ignored) at `exp`, a revocation let its JWT back in
    for as long as its key manager's leeway (up to MAX_LEEWAY_SECONDS)."""
    store = PolicyStore()
    store.apply_snapshot([entity(_revoked()), entity(_revoked("jti-forever", expires=0))], 1)
    beyond_any_leeway = 2_000 + MAX_LEEWAY_SECONDS
    assert store.current.revoked_tokens.is_revoked("default", "jti-1", 1_999)
    assert store.current.revoked_tokens.is_revoked("default", "jti-1", 2_000)
    assert store.current.revoked_tokens.is_revoked("default", "jti-1", beyond_any_leeway - 1)
    assert not store.current.revoked_tokens.is_revoked("default", "jti-1", beyond_any_leeway)
    assert not store.current.revoked_tokens.is_revoked("acme", "jti-1", 1_000)
    assert store.prune(2_000) == 0
    assert store.prune(beyond_any_leeway - 1) == 0
    assert store.prune(beyond_any_leeway) == 1
    assert store.revision == 1 and "jti-1" not in store.current.revoked_tokens
    assert store.current.revoked_tokens.is_revoked("default", "jti-forever", 10**12)
    store.apply_delete(sync_pb2.EntityRef(kind=sync_pb2.REVOKED_TOKEN, id="jti-forever"), 2)
    assert not store.current.revoked_tokens.is_revoked("default", "jti-forever", 0)


def test_store_listeners_see_every_swap():
    store = PolicyStore()
    seen = []
    store.add_listener(lambda previous, current: seen.append((previous and previous.revision, current.revision)))
    store.apply_snapshot([entity(make_key_manager())], 1)
    store.apply_upsert(entity(make_key_manager(enabled=False)), 2)
    assert seen == [(None, 1), (1, 2)]


@pytest.mark.parametrize(
    "overrides,check",
    [
        ({"algorithms": ("RS256", "none", "HS256", "hs512", "ES256")}, lambda km: km.allowed_algorithms == {"RS256", "ES256"}),
        ({"algorithms": ()}, lambda km: km.allowed_algorithms == {"RS256", "PS256", "ES256"}),
        ({"accepts_reference": True, "pattern": "(unclosed"}, lambda km: not km.accepts_reference_tokens),
        ({"leeway": 100_000}, lambda km: km.leeway_seconds == 300),
        ({"consumer_key_claims": (), "scopes_claims": ()},
         lambda km: km.consumer_key_claims == ("azp", "client_id") and km.scopes_claims == ("scope", "scp")),
        ({"client_secret": "s3cret"}, lambda km: "s3cret" not in repr(km)),
    ],
    ids=["unsafe-algorithms-dropped", "default-algorithms", "broken-pattern-accepts-no-opaque-token",
         "leeway-clamped", "default-claims", "secret-not-in-repr"],
)
def test_key_manager_compilation(overrides, check, caplog):
    with caplog.at_level(logging.ERROR):
        assert check(compile_key_manager(make_key_manager(**overrides)))


def test_record_without_id_is_dropped():
    index = index_of(make_key_manager(id=""), make_application_key(consumer_key=""))
    assert len(index.key_managers) == 0 and len(index.application_keys) == 0
