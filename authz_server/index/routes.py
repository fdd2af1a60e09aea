"""Base path → API, matched on the longest prefix that ends on a segment boundary."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from authz_server.index.apis import ApiPolicy

log = logging.getLogger(__name__)


def _preference(api: ApiPolicy) -> tuple[bool, bool, str]:
    """Smaller is preferred. base_path is unique per deployment; should two records still
    claim one, the one that serves wins, then the deployed one, then the smaller id."""
    return (not api.lifecycle.serves, not api.lifecycle.deployed, api.id)


@dataclass(frozen=True)
class RouteTable:
    by_segments: Mapping[tuple[str, ...], ApiPolicy]
    max_depth: int

    @classmethod
    def build(cls, apis: Iterable[ApiPolicy]) -> "RouteTable":
        table: dict[tuple[str, ...], ApiPolicy] = {}
        for api in apis:
            current = table.get(api.base_segments)
            if current is not None:
                log.warning("APIs %s and %s share base path %s", current.id, api.id, api.base_path)
                if _preference(current) <= _preference(api):
                    continue
            table[api.base_segments] = api
        return cls(by_segments=table, max_depth=max((len(k) for k in table), default=0))

    def match(self, segments: Sequence[str]) -> ApiPolicy | None:
        for depth in range(min(len(segments), self.max_depth), -1, -1):
            api = self.by_segments.get(tuple(segments[:depth]))
            if api is not None:
                return api
        return None
