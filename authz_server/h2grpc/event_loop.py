"""The native front end's event loop: uvloop, or the standard library's."""

from __future__ import annotations

import asyncio

EVENT_LOOPS = ("uvloop", "asyncio")


def new_event_loop(kind: str) -> asyncio.AbstractEventLoop:
    """`uvloop` (libuv, in C): less CPU per read and write than the standard library's
    selector loop, whose every iteration is Python (bench: API key 29.2 -> 25.4 µs of CPU
    per decision direct); `asyncio`: the standard library's, with the same behaviour."""
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    if kind == "asyncio":
        return asyncio.new_event_loop()
    raise ValueError(f"event loop must be one of {EVENT_LOOPS}, not {kind!r}")
