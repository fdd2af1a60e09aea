"""Readiness that knows how old the policy is.

A replica keeps deciding from its last state while admin_api is away (fail static: never
fail open, never deny for staleness alone). Beyond PORTCULLIS_MAX_STALENESS_SECONDS
without a Watch event or heartbeat it reports NOT_SERVING on gRPC health, so that Envoy's
health checks send the calls to a fresher replica; when every replica is stale Envoy's
panic threshold sends them to all of them, which still decide from their last state.
The change is logged once each way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Protocol

log = logging.getLogger(__name__)


class Health(Protocol):
    def set_stale(self, stale: bool) -> None: ...


@dataclass
class StalenessGuard:
    max_seconds: float | None           # None: off (the default)
    staleness: Callable[[], float]      # seconds since admin_api was last heard from
    ready: Callable[[], bool]
    revision: Callable[[], int]
    health: Health
    stale: bool = False

    def check(self) -> None:
        """Called about once a second by the serving process."""
        if self.max_seconds is None:
            return
        age = self.staleness()
        stale = self.ready() and age > self.max_seconds
        if stale == self.stale:
            return
        self.stale = stale
        self.health.set_stale(stale)
        if stale:
            log.warning("policy is %.1f s old (over PORTCULLIS_MAX_STALENESS_SECONDS=%g): gRPC health NOT_SERVING; "
                        "decisions continue from revision %d", age, self.max_seconds, self.revision())
        else:
            log.info("policy fresh again at revision %d: gRPC health SERVING", self.revision())
