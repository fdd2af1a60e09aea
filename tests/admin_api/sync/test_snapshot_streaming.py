"""Watch streams a snapshot while it is still being read from the database: the first
chunks leave before the read reaches the applications, and the snapshot it ends with
is the one `load` reads."""

from __future__ import annotations

import threading

from admin_api.db import models
from admin_api.sync import snapshot
from admin_api.sync.watch import WatchConfig, watch
from tests.admin_api.conftest import create_application, generate_key, published_api

WAIT = 30.0


def test_watch_sends_chunks_while_the_read_is_under_way(store, monkeypatch):
    api = published_api(store)
    generate_key(store, api.id, application_id=create_application(store).id)
    expected_revision, expected = snapshot.load(store)

    at_applications, go_on = threading.Event(), threading.Event()
    real_entities = snapshot._entities

    def slow_entities(session, model, config):
        if model is models.Application:
            at_applications.set()
            assert go_on.wait(WAIT)
        yield from real_entities(session, model, config)

    monkeypatch.setattr(snapshot, "_entities", slow_entities)
    monkeypatch.setattr(snapshot, "_HANDOFF_BATCH", 1)
    stream = watch(store, 0, active=lambda: True,
                   config=WatchConfig(poll_interval=0.05, heartbeat_interval=WAIT, snapshot_chunk_size=1))
    try:
        begin = next(stream)
        assert begin.HasField("snapshot_begin") and begin.revision == expected_revision
        first = next(stream)
        assert at_applications.wait(WAIT)
        assert first.HasField("snapshot_chunk")  # sent while the read waits before the applications
        assert first.snapshot_chunk.entities[0].HasField("organization")
    finally:
        go_on.set()
    entities = list(first.snapshot_chunk.entities)
    for event in stream:
        if event.HasField("snapshot_end"):
            break
        entities += event.snapshot_chunk.entities
    assert entities == expected
    stream.close()
