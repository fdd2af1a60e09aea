"""A key manager's token-format pattern, compiled by a linear-time engine.

The pattern is matched against every caller's opaque token on the decision loop, so a
pattern with catastrophic backtracking under Python's `re` (`(a+)+$` against
`"a" * 40 + "!"` takes 2^40 steps) would stall a worker on one request. RE2 (google-re2)
runs in time linear in the input and refuses what cannot be matched so: backreferences
and lookarounds. admin_api refuses those patterns when they are written (400, naming the
field) and authz_server compiles with the same function, so both agree on what is valid.

RE2's syntax is Python's for everything else a token format needs (classes, counted
repetition, anchors, `(?i)`); one difference: `$` matches only at the very end of the
token, never before a trailing newline.
"""

from __future__ import annotations

import re2

# Tokens longer than this never match a pattern (the key manager says "not mine"); RE2 is
# linear, the bound keeps each match's cost small and fixed. Opaque tokens from every
# provider we know of are under 512 characters.
MAX_MATCHED_LENGTH = 4096
# RE2's memory budget for one compiled pattern (its DFA cache); a pattern needing more
# is refused at compile time rather than slowing down at match time.
MAX_PROGRAM_MEMORY = 8 << 20


class TokenFormatError(ValueError):
    """The pattern is not one RE2 compiles: the message says why, in RE2's words."""


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # the error is raised to the caller, not printed to stderr
    options.max_mem = MAX_PROGRAM_MEMORY
    return options


class TokenFormat:
    """A compiled pattern that answers whether a whole token matches."""

    __slots__ = ("pattern", "_compiled")

    def __init__(self, pattern: str) -> None:
        try:
            self._compiled = re2.compile(pattern, _options())
        except re2.error as exc:
            reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            raise TokenFormatError(reason) from None
        self.pattern = pattern

    def fullmatch(self, token: str) -> bool:
        if len(token) > MAX_MATCHED_LENGTH:
            return False
        return self._compiled.fullmatch(token) is not None

    def __repr__(self) -> str:
        return f"TokenFormat({self.pattern!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TokenFormat) and other.pattern == self.pattern

    def __hash__(self) -> int:
        return hash(self.pattern)
