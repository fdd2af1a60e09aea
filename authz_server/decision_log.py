"""One structured line per decision: outcome, reason code, API, key, latency.

Never a key, a token or the query string (it may hold the key); the path only. The
consumer key (a public OAuth client id) is logged; the token itself never.

In a serving process the lines go to a `DecisionLog` sink: formatted with one f-string
and written in batches a few times a second, because `logging` (a record, a formatter
and a write per line) cost about 16 µs per decision, half of a cached decision. Elsewhere
(tests, embedding) they go through the `authz_server.decision` logger.
PORTCULLIS_DECISION_LOG picks which decisions are logged: all (default), denials or off.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Callable, TextIO

from authz_server.context import Allow, RequestContext
from authz_server.denials import Denial
from authz_server.settings import DECISION_LOG_MODES

log = logging.getLogger("authz_server.decision")

# ",000" to ",999": the milliseconds of a time stamp, formatted once (a format spec per
# line cost more than the rest of the stamp).
_MILLISECONDS = tuple(f",{millisecond:03d}" for millisecond in range(1000))

def format_decision(decision: Allow | Denial, request: RequestContext | None, latency_seconds: float,
                    outcome: str | None = None) -> str:
    """`outcome` overrides allow/deny: "would_deny" for a denial an API in DRY_RUN let through."""
    # Every part typed str, and the one format spec in an f-string of its own: compiled
    # (authz_server/compiled), an f-string of plain str values is one concatenation, where
    # one spec anywhere in it makes every value a str.format call.
    shown: str
    environment: str
    api_id: str
    kind: str
    over_quota = ""
    if isinstance(decision, Allow):
        # Read from the identity once, not through Allow's properties (a call each), and
        # `_value_`: an enum's `.value` is a Python-level descriptor in 3.11 (~0.4 µs a read).
        shown, environment, api_id = "allow", decision.environment._value_, decision.route.api.id
        identity = decision.identity
        if identity is None:
            api_key_id = application_id = kind = key_manager_id = consumer_key = ""
        else:
            api_key_id, application_id = identity.api_key_id, identity.application_id or ""
            kind, key_manager_id, consumer_key = identity.kind._value_, identity.key_manager_id, identity.consumer_key
        if decision.over_quota:
            over_quota = f" over_quota={','.join(decision.over_quota)}"
    else:
        shown, environment, application_id = outcome or "deny", "", ""
        api_id, api_key_id = decision.api_id, decision.api_key_id
        kind = key_manager_id = consumer_key = ""
    if request is not None:
        method, path, request_id = request.method or "-", request.raw_path or "-", request.request_id or "-"
    else:
        method = path = request_id = "-"
    latency_ms = f"{latency_seconds * 1000.0:.3f}"
    return (
        f"decision outcome={shown} reason={decision.code} api_id={api_id or '-'} "
        f"api_key_id={api_key_id or '-'} application_id={application_id or '-'} "
        f"environment={environment or '-'} credential_kind={kind or '-'} key_manager_id={key_manager_id or '-'} "
        f"consumer_key={consumer_key or '-'} method={method} path={path} request_id={request_id} "
        f"latency_ms={latency_ms}{over_quota}"
    )


class DecisionLog:
    """Lines buffered in memory and written by a flusher thread every `interval` seconds.

    Bounded: if the stream cannot keep up, lines past `max_pending` are dropped and the
    number dropped is written instead; a decision never waits on the log."""

    def __init__(self, stream: TextIO | None = None, *, mode: str = "all", who: str = "",
                 clock: Callable[[], float] = time.time, max_pending: int = 10_000) -> None:
        if mode not in DECISION_LOG_MODES:
            raise ValueError(f"mode must be one of {DECISION_LOG_MODES}")
        self.mode = mode
        self._stream = stream if stream is not None else sys.stderr
        self._who = who
        self._clock = clock
        self._max_pending = max_pending
        self._pending: list[str] = []
        self._dropped = 0
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._second = -1
        self._stamp = ""
        self._stopping = threading.Event()
        self._writer: threading.Thread | None = None  # not `_thread`: mypyc would name its C field `__thread`, a GCC keyword

    def wants(self, decision: Allow | Denial) -> bool:
        return self.mode == "all" or (self.mode == "denials" and not isinstance(decision, Allow))

    def record(self, decision: Allow | Denial, request: RequestContext | None, latency_seconds: float,
               outcome: str | None = None) -> None:
        if self.mode != "all" and not self.wants(decision):
            return
        text = format_decision(decision, request, latency_seconds, outcome)
        line = f"{self._timestamp()} INFO authz_server.decision{self._who} {text}\n"
        with self._lock:
            if len(self._pending) >= self._max_pending:
                self._dropped += 1
                return
            self._pending.append(line)

    def _timestamp(self) -> str:
        """The `logging` default format (local time, milliseconds), one strftime per second."""
        now = self._clock()
        second = int(now)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        return self._stamp + _MILLISECONDS[int((now - second) * 1000) % 1000]

    def flush(self) -> None:
        with self._lock:
            lines, self._pending = self._pending, []
            dropped, self._dropped = self._dropped, 0
        if dropped:
            lines.append(f"{self._timestamp()} WARNING authz_server.decision{self._who} "
                         f"dropped {dropped} decision lines: the log stream did not keep up\n")
        if not lines:
            return
        with self._write_lock:
            try:
                self._stream.write("".join(lines))
                self._stream.flush()
            except (OSError, ValueError):   # a closed or broken stream must not stop deciding
                pass

    def start(self, interval: float = 0.1) -> None:
        def run() -> None:
            while not self._stopping.wait(interval):
                self.flush()

        self._writer = threading.Thread(target=run, name="decision-log", daemon=True)
        self._writer.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._writer is not None:
            self._writer.join(timeout=2.0)
        self.flush()


_sink: DecisionLog | None = None


def install(sink: DecisionLog | None) -> None:
    """Send this process's decision lines to `sink` (None: back to the logger)."""
    global _sink
    _sink = sink


def log_decision(decision: Allow | Denial, request: RequestContext | None, latency_seconds: float,
                 outcome: str | None = None) -> None:
    sink = _sink
    if sink is not None:
        sink.record(decision, request, latency_seconds, outcome)
    elif log.isEnabledFor(logging.INFO):
        log.info("%s", format_decision(decision, request, latency_seconds, outcome))
