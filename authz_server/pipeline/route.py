"""Stage 1, route: base path → API, lifecycle, then method + path → resource."""

from __future__ import annotations

from authz_server.context import RequestContext, Route
from authz_server.denials import ApiBlocked, ApiNotDeployed, ApiNotFound, Denial, ResourceNotFound
from authz_server.index.apis import ApiPolicy, Lifecycle
from authz_server.index.policy_index import PolicyIndex


class _Routes:
    """Routes found on one index, by method and path segments: a pure function of the
    three, so a hit is the route the match would find. A new index starts an empty table;
    only found routes are kept (a denial is raised anew); bounded."""

    MAX_ENTRIES = 4096

    def __init__(self) -> None:
        self.generation: tuple[PolicyIndex | None, dict[tuple[str, tuple[str, ...]], Route]] = (None, {})

    def resolve(self, request: RequestContext, index: PolicyIndex) -> Route:
        seen, routes = self.generation
        if seen is not index:
            routes = {}
            self.generation = (index, routes)
        key = (request.method, request.segments)
        route = routes.get(key)
        if route is None:
            route = _resolve(request, index)
            if len(routes) >= self.MAX_ENTRIES:
                routes.clear()
            routes[key] = route
        return route


_ROUTES = _Routes()


def resolve_route(request: RequestContext, index: PolicyIndex) -> Route:
    return _ROUTES.resolve(request, index)


def _resolve(request: RequestContext, index: PolicyIndex) -> Route:
    api = index.apis.for_path(request.segments)
    if api is None:
        raise ApiNotFound()
    if not api.lifecycle.deployed:
        raise _about(ApiNotDeployed(), api)
    if api.lifecycle is Lifecycle.BLOCKED:
        raise _about(ApiBlocked(), api)
    resource = api.resource_for(request.method, request.segments[len(api.base_segments) :])
    if resource is None:
        raise _about(ResourceNotFound(), api)
    return Route(api=api, resource=resource)


def _about(denial: Denial, api: ApiPolicy) -> Denial:
    """The API was found: the decision log, the access log and the metrics name it."""
    denial.api_id = api.id
    return denial
