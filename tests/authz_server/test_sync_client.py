"""The sync client against an in-test PolicySync server speaking the real sync proto."""

from __future__ import annotations

import queue
import time
from concurrent import futures

import grpc
import pytest
from portcullis.sync.v1 import sync_pb2, sync_pb2_grpc

from authz_server.index import PolicyStore
from authz_server.sync_client import CHANNEL_OPTIONS, Backoff, Liveness, PolicySyncClient, token_source
from portcullis_shared.credentials import credential_digest

from .factories import PROD_KEY, entity, make_key, pizza_world

FAST = Backoff(initial=0.01, maximum=0.05)


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


class FakePolicySync(sync_pb2_grpc.PolicySyncServicer):
    """Each Watch call gets its own queue; the test pushes events (None ends the stream)."""

    def __init__(self) -> None:
        self.calls: queue.Queue = queue.Queue()

    def Watch(self, request, context):
        events: queue.Queue = queue.Queue()
        self.calls.put((request, dict(context.invocation_metadata()).get("authorization"), events))
        while context.is_active():
            try:
                event = events.get(timeout=0.05)
            except queue.Empty:
                continue
            if event is None:
                return
            yield event

    def next_call(self):
        return self.calls.get(timeout=10)


class FakeAdmin:
    def __init__(self, port: int = 0) -> None:
        self.servicer = FakePolicySync()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        sync_pb2_grpc.add_PolicySyncServicer_to_server(self.servicer, self.server)
        self.port = self.server.add_insecure_port(f"127.0.0.1:{port}")
        self.server.start()

    def stop(self) -> None:
        self.server.stop(grace=None).wait()


def snapshot_events(records, revision):
    entities = [entity(r) for r in records]
    return [
        sync_pb2.WatchEvent(revision=revision, snapshot_begin=sync_pb2.SnapshotBegin()),
        sync_pb2.WatchEvent(revision=revision, snapshot_chunk=sync_pb2.SnapshotChunk(entities=entities[:3])),
        sync_pb2.WatchEvent(revision=revision, snapshot_chunk=sync_pb2.SnapshotChunk(entities=entities[3:])),
        sync_pb2.WatchEvent(revision=revision, snapshot_end=sync_pb2.SnapshotEnd()),
    ]


def revoke_event(revision):
    return sync_pb2.WatchEvent(revision=revision, upsert=entity(make_key(revoked=True)))


def _revoked(store):
    key = store.current.api_keys.for_digest(credential_digest(PROD_KEY))
    return key is not None and key.revoked


@pytest.fixture
def admin():
    fake = FakeAdmin()
    yield fake
    fake.stop()


@pytest.fixture
def client_for():
    clients = []

    def make(port, token=lambda: "pcs_token", store=None, liveness=Liveness()):
        store = store or PolicyStore()
        client = PolicySyncClient(store, f"127.0.0.1:{port}", token, backoff=FAST, liveness=liveness, replica="test")
        client.start()
        clients.append(client)
        return client, store

    yield make
    for client in clients:
        client.stop()


def test_snapshot_is_applied_whole_at_its_end(admin, client_for):
    client, store = client_for(admin.port)
    request, authorization, events = admin.servicer.next_call()
    assert request.from_revision == 0 and request.replica == "test"
    assert authorization == "Bearer pcs_token"
    begin, chunk1, chunk2, end = snapshot_events(pizza_world(), 5)
    for event in (begin, chunk1, chunk2):
        events.put(event)
    wait_until(lambda: client.events_received == 3)
    assert not store.ready
    events.put(end)
    wait_until(lambda: store.ready)
    assert store.revision == 5
    assert store.current.api_keys.for_digest(credential_digest(PROD_KEY)).id == "key-prod"


def test_live_changes_apply_in_order_and_replays_are_ignored(admin, client_for):
    client, store = client_for(admin.port)
    _, _, events = admin.servicer.next_call()
    for event in snapshot_events(pizza_world(), 5):
        events.put(event)
    events.put(sync_pb2.WatchEvent(revision=4, delete=sync_pb2.EntityRef(kind=sync_pb2.API_KEY, id="key-prod")))
    events.put(revoke_event(6))
    events.put(sync_pb2.WatchEvent(revision=7, heartbeat=sync_pb2.Heartbeat()))
    events.put(sync_pb2.WatchEvent(revision=7, delete=sync_pb2.EntityRef(kind=sync_pb2.APPLICATION, id="app-1")))
    wait_until(lambda: store.revision == 7)
    assert _revoked(store)
    assert store.current.applications.get("app-1") is None


def test_gap_reconnects_from_last_applied_revision(admin, client_for):
    client, store = client_for(admin.port)
    _, _, events = admin.servicer.next_call()
    for event in snapshot_events(pizza_world(), 5):
        events.put(event)
    events.put(revoke_event(7))  # revision 6 is missing
    request, _, events = admin.servicer.next_call()
    assert request.from_revision == 5
    assert not _revoked(store)
    events.put(revoke_event(6))
    wait_until(lambda: store.revision == 6)
    assert _revoked(store)


def test_change_inside_a_snapshot_is_a_protocol_error(admin, client_for):
    client, store = client_for(admin.port)
    _, _, events = admin.servicer.next_call()
    begin, chunk1, _, _ = snapshot_events(pizza_world(), 5)
    for event in (begin, chunk1, revoke_event(6)):
        events.put(event)
    request, _, events = admin.servicer.next_call()
    assert request.from_revision == 0 and not store.ready


def test_stream_end_reconnects_and_resumes(admin, client_for):
    client, store = client_for(admin.port)
    _, _, events = admin.servicer.next_call()
    for event in snapshot_events(pizza_world(), 5):
        events.put(event)
    wait_until(lambda: store.ready)
    events.put(None)
    request, _, events = admin.servicer.next_call()
    assert request.from_revision == 5
    events.put(revoke_event(6))
    wait_until(lambda: store.revision == 6)


def test_keeps_state_while_admin_is_away_and_resumes_after_restart(client_for):
    first = FakeAdmin()
    port = first.port
    client, store = client_for(port)
    _, _, events = first.servicer.next_call()
    for event in snapshot_events(pizza_world(), 5):
        events.put(event)
    wait_until(lambda: store.ready)
    index_before = store.current
    first.stop()
    wait_until(lambda: not client.connected)
    assert store.current is index_before and store.revision == 5
    second = FakeAdmin(port)
    try:
        request, _, events = second.servicer.next_call()
        assert request.from_revision == 5
        events.put(revoke_event(6))
        wait_until(lambda: store.revision == 6)
        assert _revoked(store)
    finally:
        second.stop()


def test_waits_for_the_token_file(admin, client_for, tmp_path):
    token_file = tmp_path / "sync-token"
    client, store = client_for(admin.port, token=token_source(None, token_file))
    with pytest.raises(queue.Empty):
        admin.servicer.calls.get(timeout=0.2)
    token_file.write_text("pcs_from_file\n")
    _, authorization, _ = admin.servicer.next_call()
    assert authorization == "Bearer pcs_from_file"


def test_environment_token_wins_over_file(tmp_path):
    (tmp_path / "sync-token").write_text("file")
    assert token_source("env", tmp_path / "sync-token")() == "env"
    assert token_source(None, tmp_path / "sync-token")() == "file"
    assert token_source(None, tmp_path / "missing")() is None


@pytest.mark.parametrize("attempt,ceiling", [(0, 0.2), (1, 0.4), (3, 1.6), (10, 10.0), (50, 10.0)])
def test_backoff_is_capped_with_jitter(attempt, ceiling):
    import random

    rng = random.Random(7)
    delays = [Backoff().delay(attempt, rng) for _ in range(50)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 1


def test_stop_ends_the_thread(admin):
    client = PolicySyncClient(PolicyStore(), f"127.0.0.1:{admin.port}", lambda: "t", backoff=FAST)
    client.start()
    admin.servicer.next_call()
    client.stop()
    assert not client._thread.is_alive() and not client.connected


def test_silent_stream_is_dropped_and_resumed_from_the_last_revision(admin, client_for):
    # admin_api keeps the stream open but sends nothing, heartbeats included.
    client, store = client_for(admin.port, liveness=Liveness(heartbeat_interval=0.1))
    _, _, events = admin.servicer.next_call()
    for event in snapshot_events(pizza_world(), 5):
        events.put(event)
    wait_until(lambda: store.ready)
    index_before = store.current
    request, _, events = admin.servicer.next_call()
    assert request.from_revision == 5 and client.silent_streams >= 1
    assert store.current is index_before  # decisions kept their state meanwhile
    events.put(revoke_event(6))
    wait_until(lambda: store.revision == 6)
    assert _revoked(store)


def test_heartbeats_keep_a_quiet_stream(admin, client_for):
    client, store = client_for(admin.port, liveness=Liveness(heartbeat_interval=1.0))
    _, _, events = admin.servicer.next_call()
    for event in snapshot_events(pizza_world(), 5):
        events.put(event)
    wait_until(lambda: store.ready)
    for _ in range(40):  # 4 s of heartbeats, past the 3 s idle timeout
        events.put(sync_pb2.WatchEvent(revision=5, heartbeat=sync_pb2.Heartbeat()))
        time.sleep(0.1)
    events.put(revoke_event(6))
    wait_until(lambda: store.revision == 6)
    assert client.connections == 1 and client.silent_streams == 0


def test_keepalive_pings_are_accepted_by_admin_api_server_policy():
    from admin_api.transports.grpc.server import SERVER_OPTIONS

    client, server = dict(CHANNEL_OPTIONS), dict(SERVER_OPTIONS)
    assert client["grpc.keepalive_time_ms"] >= server["grpc.http2.min_recv_ping_interval_without_data_ms"]
    assert server["grpc.keepalive_permit_without_calls"] == 1
