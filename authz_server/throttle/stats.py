"""What throttling did in this process, for metrics: read with `snapshot()`.

Plain integers bumped under the GIL on the decision thread (no lock: a reader may see a
figure one call old). Kinds are subscription, application, api, resource; a burst limit
counts under its policy's kind."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

STORE_OFF, STORE_UP, STORE_DOWN = "off", "up", "down"


@dataclass
class ThrottleStats:
    allowed: Counter = field(default_factory=Counter)       # kind -> calls admitted under a limit of that kind
    refused: Counter = field(default_factory=Counter)       # kind -> calls refused by a limit of that kind
    over_quota: Counter = field(default_factory=Counter)    # kind -> calls admitted over a soft limit
    store_state: str = STORE_OFF                            # Redis: off (not configured), up or down
    store_state_changes: int = 0
    lease_round_trips: int = 0                              # pipelines sent to Redis
    store_errors: int = 0                                   # failed round trips and pings

    def snapshot(self) -> dict:
        return {
            "allowed": dict(self.allowed),
            "refused": dict(self.refused),
            "over_quota": dict(self.over_quota),
            "store_state": self.store_state,
            "store_state_changes": self.store_state_changes,
            "lease_round_trips": self.lease_round_trips,
            "store_errors": self.store_errors,
        }


# This process's figures: the throttle stage and the Redis leasing write here.
STATS = ThrottleStats()


def snapshot() -> dict:
    """This process's throttling figures (a copy)."""
    return STATS.snapshot()
