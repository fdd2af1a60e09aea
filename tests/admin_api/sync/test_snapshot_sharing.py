"""Replicas that ask for a snapshot while one is being read share that read, and every
one of them gets chunks as the read goes: the whole snapshot from its first entity, a
heartbeat when the read is slow, the read's error (and no SnapshotEnd) when it fails,
and nothing kept once the streams are gone."""

from __future__ import annotations

import queue
import threading
import weakref

import pytest

from admin_api.sync import snapshot
from portcullis.admin.v1 import admin_pb2
from portcullis.sync.v1 import sync_pb2

WAIT = 30.0  # generous: only a broken implementation ever waits this long
HEARTBEAT = sync_pb2.WatchEvent(revision=99, heartbeat=sync_pb2.Heartbeat())


class _Store:
    """Only its identity matters here (the key of the shared read)."""


class _ScriptedRead:
    """Stands in for `read_into`: the test hands it one step at a time, so the read is
    exactly as far as the test says, and blocks in between."""

    def __init__(self) -> None:
        self.steps: queue.Queue = queue.Queue()
        self.threads: list[threading.Thread] = []
        self.reads: list[weakref.ref] = []

    def __call__(self, store: object, into: snapshot.SharedRead) -> None:
        self.threads.append(threading.current_thread())
        self.reads.append(weakref.ref(into))
        while (step := self.steps.get(timeout=WAIT)) is not None:
            step(into)

    def begin(self, revision: int) -> None:
        self.steps.put(lambda into: into.begin(revision))

    def add(self, *names: str) -> None:
        self.steps.put(lambda into: into.extend([_entity(name) for name in names]))

    def fail(self, message: str) -> None:
        def raise_it(into: snapshot.SharedRead) -> None:
            raise RuntimeError(message)  # made here, as a driver's error is: nothing else holds it
        self.steps.put(raise_it)

    def complete(self) -> None:
        self.steps.put(None)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(WAIT)
            assert not thread.is_alive()


@pytest.fixture
def script(monkeypatch) -> _ScriptedRead:
    script = _ScriptedRead()
    monkeypatch.setattr(snapshot, "read_into", script)
    yield script
    script.complete()  # a test that stopped halfway must not leave its reader waiting
    script.join()


def _entity(name: str) -> sync_pb2.PolicyEntity:
    return sync_pb2.PolicyEntity(organization=admin_pb2.Organization(id=name))


def _stream(store, chunk_size: int = 2, idle: float = WAIT):
    """What Watch does for a snapshot, with a heartbeat the test can recognise."""
    with snapshot.shared(store) as read:
        return (yield from snapshot.events(read, chunk_size, idle, lambda: HEARTBEAT))


def _kind(event: sync_pb2.WatchEvent) -> str:
    if event.HasField("snapshot_chunk"):
        return "chunk:" + ",".join(e.organization.id for e in event.snapshot_chunk.entities)
    return event.WhichOneof("event")


def _rest(stream) -> list[str]:
    return [_kind(event) for event in stream]


def test_chunks_go_out_before_the_read_ends(script):
    script.begin(7)
    script.add("a", "b", "c")
    stream = _stream(_Store())
    first = next(stream)
    assert first.HasField("snapshot_begin") and first.revision == 7
    chunk = next(stream)  # the reader now waits for its next step: the read is not over
    assert _kind(chunk) == "chunk:a,b" and chunk.revision == 7
    script.add("d", "e")
    assert _kind(next(stream)) == "chunk:c,d"
    script.complete()
    assert _rest(stream) == ["chunk:e", "snapshot_end"]


def test_begin_goes_out_as_soon_as_the_revision_is_known(script):
    script.begin(3)
    stream = _stream(_Store())
    assert next(stream).HasField("snapshot_begin")
    script.complete()
    assert _rest(stream) == ["snapshot_end"]


def test_a_follower_joining_mid_read_gets_the_whole_snapshot(script):
    store = _Store()
    script.begin(7)
    script.add("a", "b", "c", "d")
    leader = _stream(store)
    assert [_kind(next(leader)) for _ in range(3)] == ["snapshot_begin", "chunk:a,b", "chunk:c,d"]
    follower = _stream(store)
    assert _kind(next(follower)) == "snapshot_begin"
    script.add("e")
    script.complete()
    assert _rest(follower) == ["chunk:a,b", "chunk:c,d", "chunk:e", "snapshot_end"]
    assert _rest(leader) == ["chunk:e", "snapshot_end"]
    assert len(script.threads) == 1  # one read for both


def test_a_stream_after_a_complete_read_starts_a_new_one(script):
    store = _Store()
    script.begin(1)
    script.add("a")
    script.complete()
    assert _rest(_stream(store)) == ["snapshot_begin", "chunk:a", "snapshot_end"]
    script.join()
    script.begin(2)
    script.add("b")
    script.complete()
    assert _rest(_stream(store)) == ["snapshot_begin", "chunk:b", "snapshot_end"]
    assert len(script.threads) == 2


def test_other_stores_do_not_share(monkeypatch):
    release, reads = threading.Event(), []

    def reader(store, into):
        reads.append(store)
        into.begin(store.revision)
        release.wait(WAIT)

    monkeypatch.setattr(snapshot, "read_into", reader)
    one, two = _Store(), _Store()
    one.revision, two.revision = 1, 2
    first, second = _stream(one), _stream(two)
    try:
        assert next(first).revision == 1 and next(second).revision == 2  # both under way at once
    finally:
        release.set()
    assert _rest(first) == _rest(second) == ["snapshot_end"]
    assert reads == [one, two]


def _past_heartbeats(stream) -> str:
    """The next event that is not a heartbeat: with a tiny idle time, heartbeats may come
    while the reader thread takes its step, however quick it is."""
    while (kind := _kind(next(stream))) == "heartbeat":
        pass
    return kind


def test_a_heartbeat_while_the_revision_is_unknown(script):
    stream = _stream(_Store(), idle=0.01)
    assert next(stream) == HEARTBEAT  # the reader waits for its first step
    script.begin(4)
    assert _past_heartbeats(stream) == "snapshot_begin"
    script.complete()
    assert _past_heartbeats(stream) == "snapshot_end"


def test_a_heartbeat_between_chunks_when_the_read_is_slow(script):
    script.begin(7)
    script.add("a", "b")
    stream = _stream(_Store(), idle=0.01)
    assert [_past_heartbeats(stream) for _ in range(2)] == ["snapshot_begin", "chunk:a,b"]
    assert next(stream) == HEARTBEAT  # the reader waits for its next step
    script.add("c", "d")
    assert _past_heartbeats(stream) == "chunk:c,d"
    script.complete()
    assert _past_heartbeats(stream) == "snapshot_end"


def test_a_failed_read_ends_every_sharing_stream_with_the_error(script):
    store = _Store()
    script.begin(7)
    script.add("a", "b", "c")
    streams = [_stream(store), _stream(store)]
    for stream in streams:
        assert [_kind(next(stream)) for _ in range(2)] == ["snapshot_begin", "chunk:a,b"]
    script.fail("database gone")
    for stream in streams:
        sent = []
        with pytest.raises(RuntimeError, match="database gone"):
            for event in stream:
                sent.append(_kind(event))
        assert "snapshot_end" not in sent  # a partial snapshot is never ended


def test_a_failed_read_before_the_revision_fails_the_stream(script):
    stream = _stream(_Store())
    script.fail("no database")
    with pytest.raises(RuntimeError, match="no database"):
        next(stream)


def test_nothing_is_kept_once_the_streams_end(script):
    store = _Store()
    script.begin(7)
    one, two = _stream(store), _stream(store)
    assert _kind(next(one)) == _kind(next(two)) == "snapshot_begin"
    script.add("a")
    script.complete()
    assert _rest(one) == _rest(two) == ["chunk:a", "snapshot_end"]
    assert len(script.threads) == 1
    script.join()
    assert store not in snapshot._reads
    assert script.reads[0]() is None  # freed at once, not left to a garbage collection


def test_nothing_is_kept_after_a_failed_read(script):
    script.begin(7)
    script.add("a")
    script.fail("database gone")
    with pytest.raises(RuntimeError):
        _rest(_stream(_Store()))
    script.join()
    assert script.reads[0]() is None  # the error's traceback does not keep the read alive


def test_a_read_every_stream_left_stops_and_is_dropped(script):
    store = _Store()
    script.begin(7)
    script.add("a", "b")
    one, two = _stream(store), _stream(store)
    assert _kind(next(one)) == _kind(next(two)) == "snapshot_begin"
    one.close()
    two.close()  # a client went away; the read is not finished
    assert store not in snapshot._reads
    script.add("c")  # the reader's next hand-off stops it
    never = lambda into: None  # noqa: E731
    script.steps.put(never)
    script.join()
    assert script.reads[0]() is None
    assert script.steps.get_nowait() is never  # the read went no further
    script.begin(8)
    script.complete()
    assert _rest(_stream(store)) == ["snapshot_begin", "snapshot_end"]  # a new stream, a new read


def test_a_read_stays_while_one_stream_still_uses_it(script):
    store = _Store()
    script.begin(7)
    one, two = _stream(store), _stream(store)
    next(one), next(two)
    one.close()
    script.add("a")
    script.complete()
    assert _rest(two) == ["chunk:a", "snapshot_end"]
