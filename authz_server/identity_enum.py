"""An Enum hashed by identity, for the enums the decision path looks up in dicts.

Enum's own `__hash__` is Python code (hash of the member's name), run on every dict lookup
keyed by a member: ~0.1 µs each, several per decision. A member is a singleton and Enum
compares by identity, so object's hash (in C) agrees with equality; it differs between
processes, which no dict here outlives."""

from __future__ import annotations

import enum


class IdentityHashedEnum(enum.Enum):
    __hash__ = object.__hash__
