"""Stage 1, route: base path → API, lifecycle, then method + path → resource."""

from __future__ import annotations

from authz_server.context import RequestContext, Route
from authz_server.denials import ApiBlocked, ApiNotDeployed, ApiNotFound, Denial, ResourceNotFound
from authz_server.index.apis import ApiPolicy, Lifecycle
from authz_server.index.policy_index import PolicyIndex


def resolve_route(request: RequestContext, index: PolicyIndex) -> Route:
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
