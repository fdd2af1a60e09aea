"""Decisions run inline on the serving thread until they would wait on the network.

The native front end (authz_server.h2grpc) decides on its event-loop thread: a cached
decision costs tens of microseconds and a thread hop would cost more than the decision.
A decision that must fetch a JWKS or ask an introspection endpoint would stall every
other call on that loop, so those places call `ensure_may_block()` first: on the loop it
raises `WouldBlock` *before* changing any state, and the front end runs the same
decision again on a worker thread where waiting is allowed.
"""

from __future__ import annotations

import threading

_state = threading.local()


class WouldBlock(BaseException):
    """This decision needs the network; run it again where blocking is allowed.

    A BaseException on purpose: the pipeline's `except Exception` handlers turn failures
    into denials, and this is not a failure but a request to move the call."""


def _inline() -> bool:
    return getattr(_state, "inline", False)


class _Inline:
    """A class, not @contextmanager: entered once per call on the loop, where the generator
    and its wrapper cost ~1.5 µs."""

    __slots__ = ("_previous",)

    def __enter__(self) -> None:
        self._previous = _inline()
        _state.inline = True

    def __exit__(self, *exc_info: object) -> None:
        _state.inline = self._previous


def inline() -> _Inline:
    """Within this block, code that would block raises WouldBlock instead."""
    return _Inline()


def ensure_may_block() -> None:
    if _inline():
        raise WouldBlock()


def acquire(lock: threading.Lock) -> None:
    """Take `lock`; inline, only if it is free at once (its holder may be waiting on I/O)."""
    if _inline():
        if not lock.acquire(blocking=False):
            raise WouldBlock()
    else:
        lock.acquire()
