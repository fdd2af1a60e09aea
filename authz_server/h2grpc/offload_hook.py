"""The one tie between this server and what its handlers do: how a handler asks to be
run again on the thread pool instead of the event loop.

The server calls every handler first inside `hook.inline()`; a handler that would wait
raises `hook.would_block` (before changing any state) and the same call is then run on
the pool. The default hook never moves a call.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, ContextManager


class _NeverRaised(BaseException):
    """The `would_block` of a hook that never moves a call (no handler raises it)."""


def _uncounted(refused: bool) -> None:
    pass


@dataclass(frozen=True)
class OffloadHook:
    inline: Callable[[], ContextManager[None]]
    would_block: type[BaseException]
    # Told of every call that asked to move: counted(False) when it moved, counted(True)
    # when it was refused because too many were waiting (the metrics count both).
    counted: Callable[[bool], None] = _uncounted


NEVER_OFFLOAD = OffloadHook(inline=contextlib.nullcontext, would_block=_NeverRaised)
