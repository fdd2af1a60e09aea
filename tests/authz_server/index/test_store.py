import pytest
from portcullis.sync.v1 import sync_pb2

from authz_server.index import PolicyStore, RevisionGap
from authz_server.index.apis import Lifecycle
from portcullis_shared.credentials import credential_digest

from ..factories import (
    PIZZA_BASE,
    PROD_KEY,
    Api,
    Subscription,
    entity,
    index_of,
    make_api,
    make_key,
    make_subscription,
    pizza_world,
)


def _ref(kind, id):
    return sync_pb2.EntityRef(kind=kind, id=id)


def _ready_store(revision=10):
    store = PolicyStore()
    store.apply_snapshot([entity(r) for r in pizza_world()], revision)
    return store


@pytest.mark.parametrize(
    "path,expected",
    [
        ("/pizzashack/1.0.0/menu", "v1"),
        ("/pizzashack/1.0.0", "v1"),
        ("/pizzashack/2.0.0/menu", "v2"),
        ("/pizzashack/1.0.0x/menu", "root"),
        ("/pizzashackx/1.0.0/menu", None),
        ("/pizzashack", "root"),
        ("/pizzashack/other", "root"),
        ("/t/acme/pizzashack/1.0.0/menu", "acme"),
        ("/elsewhere", None),
        ("/", None),
    ],
    ids=lambda v: str(v),
)
def test_longest_base_path_on_segment_boundary(path, expected):
    index = index_of(
        make_api("v1", "/pizzashack/1.0.0"),
        make_api("v2", "/pizzashack/2.0.0"),
        make_api("root", "/pizzashack"),
        make_api("acme", "/t/acme/pizzashack/1.0.0", organization_id="acme"),
    )
    segments = tuple(s for s in path.split("/")[1:] if s)
    api = index.apis.for_path(segments)
    assert (api.id if api else None) == expected


def test_duplicate_base_path_prefers_serving_api():
    index = index_of(make_api("old", state=Api.RETIRED), make_api("new", state=Api.PUBLISHED))
    assert index.apis.for_path(("pizzashack", "1.0.0")).id == "new"


def test_snapshot_files_every_entity():
    index = index_of(*pizza_world(), revision=7)
    assert index.revision == 7
    assert index.api_keys.for_digest(credential_digest(PROD_KEY)).id == "key-prod"
    assert index.applications.get("app-1").id == "app-1"
    assert index.subscriptions.for_application("app-1", "api-pizza").id == "sub-1"
    assert index.apis["api-pizza"].lifecycle is Lifecycle.PUBLISHED


def test_store_is_not_ready_until_a_snapshot():
    store = PolicyStore()
    assert not store.ready and store.current is None and store.revision == 0
    seen = []
    store.on_ready(lambda: seen.append(store.revision))
    store.apply_snapshot([], 3)
    assert store.ready and seen == [3]


def test_snapshot_swap_leaves_earlier_index_untouched():
    store = _ready_store()
    before = store.current
    store.apply_snapshot([entity(make_api("other", "/other"))], 11)
    assert before.apis.for_path(("pizzashack", "1.0.0")) is not None
    assert store.current.apis.for_path(("pizzashack", "1.0.0")) is None
    assert store.current.api_keys.for_digest(credential_digest(PROD_KEY)) is None


def test_upsert_replaces_and_keeps_old_index_consistent():
    store = _ready_store(10)
    before = store.current
    assert store.apply_upsert(entity(make_key(revoked=True)), 11)
    assert store.revision == 11
    assert store.current.api_keys.for_digest(credential_digest(PROD_KEY)).revoked
    assert not before.api_keys.for_digest(credential_digest(PROD_KEY)).revoked


def test_upsert_with_a_new_hash_retires_the_old_hash():
    store = _ready_store(10)
    store.apply_upsert(entity(make_key(value="pck_rotated")), 11)
    assert store.current.api_keys.for_digest(credential_digest(PROD_KEY)) is None
    assert store.current.api_keys.for_digest(credential_digest("pck_rotated")).id == "key-prod"


def test_subscription_moved_to_another_pair_leaves_no_stale_entry():
    store = _ready_store(10)
    store.apply_upsert(entity(make_subscription(api_id="api-other")), 11)
    assert store.current.subscriptions.for_application("app-1", "api-pizza") is None
    assert store.current.subscriptions.for_application("app-1", "api-other").id == "sub-1"


@pytest.mark.parametrize(
    "kind,id,gone",
    [
        (sync_pb2.API, "api-pizza", lambda i: i.apis.for_path(("pizzashack", "1.0.0")) is None),
        (sync_pb2.API_KEY, "key-prod", lambda i: i.api_keys.for_digest(credential_digest(PROD_KEY)) is None),
        (sync_pb2.APPLICATION, "app-1", lambda i: i.applications.get("app-1") is None),
        (sync_pb2.SUBSCRIPTION, "sub-1", lambda i: i.subscriptions.for_application("app-1", "api-pizza") is None),
        (sync_pb2.ORGANIZATION, "default", lambda i: "default" not in i.organizations),
    ],
    ids=["api", "api_key", "application", "subscription", "organization"],
)
def test_delete_removes_every_lookup(kind, id, gone):
    store = _ready_store(10)
    assert store.apply_delete(_ref(kind, id), 11)
    assert gone(store.current)


def test_delete_of_unknown_id_is_harmless():
    store = _ready_store(10)
    assert store.apply_delete(_ref(sync_pb2.API_KEY, "nope"), 11)
    assert store.revision == 11


@pytest.mark.parametrize("revision", [5, 10], ids=["below", "equal"])
def test_replayed_change_is_ignored(revision):
    store = _ready_store(10)
    assert not store.apply_upsert(entity(make_key(revoked=True)), revision)
    assert not store.current.api_keys.for_digest(credential_digest(PROD_KEY)).revoked
    assert store.revision == 10


def test_gap_in_revisions_is_refused():
    store = _ready_store(10)
    with pytest.raises(RevisionGap) as info:
        store.apply_upsert(entity(make_key(revoked=True)), 12)
    assert (info.value.applied, info.value.received) == (10, 12)
    assert store.revision == 10


def test_change_before_snapshot_is_refused():
    with pytest.raises(RuntimeError):
        PolicyStore().apply_upsert(entity(make_key()), 1)


def test_snapshot_at_lower_revision_is_authoritative():
    store = _ready_store(10)
    store.apply_snapshot([entity(make_api())], 2)
    assert store.revision == 2


def test_record_that_cannot_compile_is_dropped_fail_closed():
    store = _ready_store(10)
    broken = make_api(base_path="no-leading-slash")
    broken.id = "api-pizza"
    store.apply_upsert(entity(broken), 11)
    assert "api-pizza" not in store.current.apis
    assert store.current.apis.for_path(("pizzashack", "1.0.0")) is None


def test_unknown_lifecycle_is_not_deployed():
    index = index_of(make_api(state=0))
    assert index.apis["api-pizza"].lifecycle is Lifecycle.CREATED


def test_unknown_subscription_status_is_kept_as_unknown():
    index = index_of(make_subscription(status=Subscription.STATUS_UNSPECIFIED))
    assert index.subscriptions.for_application("app-1", "api-pizza").status.value == "UNKNOWN"


def test_api_key_scheme_defaults():
    index = index_of(make_api())
    scheme = index.apis["api-pizza"].api_key
    assert (scheme.header, scheme.query_param) == ("apikey", "apikey")
    assert index.apis.for_path(("pizzashack", "1.0.0", "menu")).base_path == PIZZA_BASE
