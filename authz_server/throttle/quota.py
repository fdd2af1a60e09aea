"""What one decision asks the counters: the quotas that apply to the call."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import NamedTuple

from authz_server.throttle.windows import LAST_WINDOWS, Unit, Window, nominal_seconds, window_at

# Policy kinds as the reason codes and RateLimit item names spell them.
SUBSCRIPTION = "subscription"
APPLICATION = "application"
API = "api"
RESOURCE = "resource"


def fingerprint(text: str) -> int:
    """A stable non-zero 63-bit number for a counter key: the same in every process (Python's
    own `hash()` is salted per process)."""
    value = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1
    return value or 1


@dataclass(frozen=True, slots=True)
class Quota:
    """One counter to check: `limit` calls per `unit` for `subject` (who is counted).

    `kind` is subscription, application, api or resource; `burst` says this is a policy's
    burst limit rather than its main one. The counter's identity is (subject, unit, burst):
    it does not name the policy, so a tier change keeps what was counted in the window and
    applies the new limit to it."""

    kind: str
    subject: str                  # e.g. "s|<application id>|<api id>"
    limit: int
    unit: Unit
    policy: str                   # the policy's name (headers, decision log)
    burst: bool = False
    stop_on_quota_reach: bool = True
    key: str = field(init=False)
    fingerprint: int = field(init=False)
    # Made once (a Quota lives as long as its policy): the RateLimit-Policy item, and the
    # start of the RateLimit item, whose r= and t= change each call.
    policy_item: str = field(init=False, compare=False)
    state_prefix: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        key = f"{self.subject}|{self.unit.code}|{'b' if self.burst else 'm'}"
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "fingerprint", fingerprint(key))
        label = self.label
        object.__setattr__(self, "policy_item", f'"{label}";q={self.limit};w={nominal_seconds(self.unit)}')
        object.__setattr__(self, "state_prefix", f'"{label}";r=')

    def window(self, now: float) -> Window:
        last = LAST_WINDOWS.get(self.unit)   # window_at's first lines, without its call (~0.1 µs)
        if last is not None and last.start <= now < last.end:
            return last
        return window_at(self.unit, now)

    @property
    def label(self) -> str:
        """The RateLimit item name: the kind, and "-burst" for a burst limit."""
        return f"{self.kind}-burst" if self.burst else self.kind


class Count(NamedTuple):
    """A quota after the decision: how many calls it still admits in its window (a tuple:
    one is made per quota per call, and a frozen dataclass costs three times as much)."""

    quota: Quota
    remaining: int
    window: Window


class Verdict(NamedTuple):
    """`refused_by`: the first quota exceeded that stops calls (nothing was counted then);
    `over`: exceeded quotas with stop_on_quota_reach false (the call was admitted and counted);
    `store_unavailable`: refused because the shared store is away and the failure mode is
    closed (refused_by is the quota that needed it)."""

    counts: tuple[Count, ...]
    refused_by: Count | None = None
    over: tuple[Count, ...] = ()
    store_unavailable: bool = False

    @property
    def allowed(self) -> bool:
        return self.refused_by is None


_new_tuple = tuple.__new__


def admitted_under(quota: Quota, remaining: int, window: Window) -> Verdict:
    """`Verdict((Count(quota, remaining, window),))`, the usual verdict of a call under one
    limit, made without the two NamedTuples' Python-level __new__ (~0.4 -> 0.1 µs)."""
    return _new_tuple(Verdict, ((_new_tuple(Count, (quota, remaining, window)),), None, (), False))
