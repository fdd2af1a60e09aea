"""The decision log sink: one line per decision in the logging format, batched, bounded,
filtered by mode, and never a credential."""

from __future__ import annotations

import io
import re

import pytest

from authz_server.context import Allow
from authz_server.decision_log import DecisionLog, format_decision
from authz_server.denials import ApiKeyInvalid
from authz_server.pipeline import decide

from .factories import NOW, PIZZA_BASE, PROD_KEY, index_of, make_request, pizza_world


@pytest.fixture
def allow():
    context = make_request(PIZZA_BASE + "/menu", headers={"apikey": PROD_KEY})
    decision = decide(context, index_of(*pizza_world()), NOW)
    assert isinstance(decision, Allow)
    return decision, context


def test_lines_wait_for_a_flush_and_look_like_the_other_log_lines(allow):
    stream = io.StringIO()
    sink = DecisionLog(stream, who=" worker-1", clock=lambda: 1_800_000_000.25)
    sink.record(*allow, 0.0021)
    assert stream.getvalue() == ""
    sink.flush()
    line = stream.getvalue()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,250 INFO authz_server\.decision worker-1 decision "
                        r"outcome=allow reason=allowed .* latency_ms=2\.100\n", line)
    assert PROD_KEY not in line


@pytest.mark.parametrize(("mode", "lines"), [("all", 2), ("denials", 1), ("off", 0)])
def test_the_mode_picks_the_decisions(allow, mode, lines):
    stream = io.StringIO()
    sink = DecisionLog(stream, mode=mode)
    sink.record(*allow, 0.001)
    sink.record(ApiKeyInvalid(), allow[1], 0.001)
    sink.flush()
    assert stream.getvalue().count("\n") == lines


def test_a_stream_that_cannot_keep_up_costs_lines_not_memory(allow):
    stream = io.StringIO()
    sink = DecisionLog(stream, max_pending=3)
    for _ in range(10):
        sink.record(*allow, 0.001)
    sink.flush()
    text = stream.getvalue()
    assert text.count("outcome=allow") == 3
    assert "dropped 7 decision lines" in text


def test_a_broken_stream_never_raises(allow):
    stream = io.StringIO()
    stream.close()
    sink = DecisionLog(stream)
    sink.record(*allow, 0.001)
    sink.flush()


def test_the_flusher_thread_writes_and_stop_flushes_the_rest(allow):
    stream = io.StringIO()
    sink = DecisionLog(stream)
    sink.start(interval=0.01)
    sink.record(*allow, 0.001)
    sink.stop()
    assert "outcome=allow" in stream.getvalue()


def test_format_without_a_request():
    assert format_decision(ApiKeyInvalid(), None, 0.0).endswith("method=- path=- request_id=- latency_ms=0.000")
