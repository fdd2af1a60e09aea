"""Base path → API, matched on the longest prefix that ends on a segment boundary.

Every organization owns its own path namespace: the default organization everything
outside `/t/`, organization `X` everything under `/t/X/`. admin_api refuses base paths
outside the owner's namespace and base paths that nest across organizations; this table
enforces the namespace again (an API record outside it is left out and logged), so that
no record, however it was written, lets one organization answer another's requests."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

if TYPE_CHECKING:  # apis.py files its APIs here; only the type is needed back
    from authz_server.index.apis import ApiPolicy

log = logging.getLogger(__name__)

DEFAULT_ORGANIZATION = "default"
TENANT_SEGMENT = "t"


def _preference(api: ApiPolicy) -> tuple[bool, bool, str]:
    """Smaller is preferred. base_path is unique per deployment; should two records still
    claim one, the one that serves wins, then the deployed one, then the smaller id."""
    return (not api.lifecycle.serves, not api.lifecycle.deployed, api.id)


def in_own_namespace(api: ApiPolicy) -> bool:
    segments = api.base_segments
    if api.organization_id == DEFAULT_ORGANIZATION:
        return not segments or segments[0] != TENANT_SEGMENT
    return len(segments) > 2 and segments[0] == TENANT_SEGMENT and segments[1] == api.organization_id


@dataclass(frozen=True)
class RouteTable:
    by_segments: Mapping[tuple[str, ...], ApiPolicy]
    max_depth: int

    @classmethod
    def build(cls, apis: Iterable[ApiPolicy]) -> "RouteTable":
        table: dict[tuple[str, ...], ApiPolicy] = {}
        for api in apis:
            if not in_own_namespace(api):
                log.error("API %s of organization %s is left out of routing: its base path %s lies outside "
                          "the organization's paths", api.id, api.organization_id, api.base_path)
                continue
            current = table.get(api.base_segments)
            if current is not None:
                log.warning("APIs %s and %s share base path %s", current.id, api.id, api.base_path)
                if _preference(current) <= _preference(api):
                    continue
            table[api.base_segments] = api
        return cls(by_segments=table, max_depth=max((len(k) for k in table), default=0))

    def match(self, segments: Sequence[str]) -> ApiPolicy | None:
        """The API with the longest base path that is a segment prefix of `segments`.
        Only the owner's APIs are in the table under each namespace (see build), so the
        answer is always an API of the organization that owns the path."""
        for depth in range(min(len(segments), self.max_depth), -1, -1):
            api = self.by_segments.get(tuple(segments[:depth]))
            if api is not None:
                return api
        return None


NO_ROUTES = RouteTable(by_segments={}, max_depth=0)
