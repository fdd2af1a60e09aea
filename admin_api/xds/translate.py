"""One API → its Envoy routes and clusters (pure: protobuf in, protobuf out).

Each deployed API (PUBLISHED, DEPRECATED, BLOCKED: authz_server denies a BLOCKED one)
gets, per environment with an endpoint, a cluster `api.<id>.<environment>.<digest>` and a
route matching its base path with `path_separated_prefix` (the prefix, then `/` or the end:
the segment-boundary rule authz_server's route table uses) and the environment header
authz_server sets on every allow. Routes are ordered deepest base path first, so that
`/a/b` wins over `/a` exactly as in authz_server's longest-prefix match.

The digest names the cluster's content (endpoint, TLS, timeouts): a changed endpoint is a
new cluster, never an old cluster changed in place. Envoy applies clusters before routes,
so an in-place change would send requests to the new host with the old route's path
rewrite until the routes arrive; with a new name, the old route keeps its old cluster
until the new route replaces both (the streams keep the old cluster that long: session).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.route.v3 import route_components_pb2
from envoy.extensions.filters.http.ext_authz.v3 import ext_authz_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.type.matcher.v3 import regex_pb2, string_pb2
from google.protobuf import any_pb2, duration_pb2

from admin_api.xds.endpoints import EndpointError, Upstream, parse_endpoint
from portcullis.admin.v1 import admin_pb2
from portcullis_shared.gateway import ENVIRONMENT_HEADER, PRODUCTION, SANDBOX

log = logging.getLogger(__name__)

DEPLOYED_STATES = frozenset({admin_pb2.Api.PUBLISHED, admin_pb2.Api.DEPRECATED, admin_pb2.Api.BLOCKED})
DEFAULT_TIMEOUT_SECONDS = 60.0
DEFAULT_CONNECT_TIMEOUT_SECONDS = 5.0
CLUSTER_PREFIX = "api."


@dataclass(frozen=True)
class TlsTrust:
    """Where upstream certificates are checked against when an API brings no CA bundle."""

    system_trust_store: str   # a PEM file on the Envoy host


@dataclass(frozen=True)
class TranslatedApi:
    api_id: str
    order: tuple[int, str]                            # smaller first: deeper base path, then the path
    routes: tuple[route_components_pb2.Route, ...]
    clusters: tuple[cluster_pb2.Cluster, ...]


def route_name(api_id: str, environment: str) -> str:
    return f"{CLUSTER_PREFIX}{api_id}.{environment}"


def cluster_name(api_id: str, environment: str, digest: str) -> str:
    return f"{route_name(api_id, environment)}.{digest}"


def _duration(seconds: float) -> duration_pb2.Duration:
    value = duration_pb2.Duration()
    value.FromMilliseconds(max(1, round(seconds * 1000)))
    return value


def _tls_socket(upstream: Upstream, ca_bundle_pem: str, trust: TlsTrust) -> base_pb2.TransportSocket:
    trusted = (base_pb2.DataSource(inline_string=ca_bundle_pem) if ca_bundle_pem
               else base_pb2.DataSource(filename=trust.system_trust_store))
    san_type = common_pb2.SubjectAltNameMatcher.IP_ADDRESS if upstream.is_ip else common_pb2.SubjectAltNameMatcher.DNS
    context = tls_pb2.UpstreamTlsContext(
        # No SNI for an IP address (RFC 6066 names hosts only).
        sni="" if upstream.is_ip else upstream.host,
        common_tls_context=tls_pb2.CommonTlsContext(
            validation_context=common_pb2.CertificateValidationContext(
                trusted_ca=trusted,
                match_typed_subject_alt_names=[common_pb2.SubjectAltNameMatcher(
                    san_type=san_type, matcher=string_pb2.StringMatcher(exact=upstream.host))],
            ),
        ),
    )
    typed = any_pb2.Any()
    typed.Pack(context)
    return base_pb2.TransportSocket(name="envoy.transport_sockets.tls", typed_config=typed)


def _cluster(api_id: str, environment: str, upstream: Upstream, config: admin_pb2.UpstreamConfig,
             trust: TlsTrust) -> cluster_pb2.Cluster:
    cluster = _unnamed_cluster(upstream, config, trust)
    digest = hashlib.sha256(cluster.SerializeToString(deterministic=True)).hexdigest()[:12]
    cluster.name = cluster.load_assignment.cluster_name = cluster_name(api_id, environment, digest)
    return cluster


def _unnamed_cluster(upstream: Upstream, config: admin_pb2.UpstreamConfig, trust: TlsTrust) -> cluster_pb2.Cluster:
    endpoint = endpoint_components_pb2.LbEndpoint(endpoint=endpoint_components_pb2.Endpoint(
        address=address_pb2.Address(socket_address=address_pb2.SocketAddress(
            address=upstream.host, port_value=upstream.port))))
    cluster = cluster_pb2.Cluster(
        # An IP address needs no resolution; a name is resolved as a browser would: one
        # address at a time, re-resolved in the background, IPv4 first.
        type=cluster_pb2.Cluster.STATIC if upstream.is_ip else cluster_pb2.Cluster.LOGICAL_DNS,
        connect_timeout=_duration(config.connect_timeout_seconds or DEFAULT_CONNECT_TIMEOUT_SECONDS),
        load_assignment=endpoint_pb2.ClusterLoadAssignment(
            endpoints=[endpoint_components_pb2.LocalityLbEndpoints(lb_endpoints=[endpoint])]),
    )
    if not upstream.is_ip:
        cluster.dns_lookup_family = cluster_pb2.Cluster.V4_PREFERRED
        # One API's name that does not resolve (or a slow DNS server) must not hold up the
        # whole gateway's start: until its first answer that API gets 503 backend_unavailable.
        cluster.wait_for_warm_on_init.value = False
    if upstream.tls:
        cluster.transport_socket.CopyFrom(_tls_socket(upstream, config.ca_bundle_pem, trust))
    return cluster


def _rewrite(action: route_components_pb2.RouteAction, base_path: str, upstream: Upstream) -> None:
    """`/petstore/v1/pets` → endpoint path + `/pets`; the query string is never touched."""
    if upstream.path_prefix:
        action.prefix_rewrite = upstream.path_prefix
        return
    # No path on the endpoint: the base path and the slash after it become one `/`
    # (a plain prefix rewrite to "/" would send `//pets`). Base paths hold only
    # `[A-Za-z0-9._~-]` and `/`, of which only `.` means something in RE2.
    action.regex_rewrite.pattern.regex = "^" + base_path.replace(".", r"\.") + "/?"
    action.regex_rewrite.substitution = "/"


def _route(api: admin_pb2.Api, environment: str, upstream: Upstream, cluster: str) -> route_components_pb2.Route:
    config = api.upstream
    action = route_components_pb2.RouteAction(
        cluster=cluster,
        timeout=_duration(config.timeout_seconds or DEFAULT_TIMEOUT_SECONDS),
        host_rewrite_literal=upstream.host_header,
    )
    _rewrite(action, api.base_path, upstream)
    return route_components_pb2.Route(
        name=route_name(api.id, environment),
        match=route_components_pb2.RouteMatch(
            path_separated_prefix=api.base_path,
            headers=[route_components_pb2.HeaderMatcher(
                name=ENVIRONMENT_HEADER, string_match=string_pb2.StringMatcher(exact=environment))],
        ),
        route=action,
    )


def translate(api: admin_pb2.Api, trust: TlsTrust) -> TranslatedApi | None:
    """None when the API is not deployed (CREATED, RETIRED) or cannot be deployed."""
    if api.lifecycle_state not in DEPLOYED_STATES:
        return None
    if not api.base_path.startswith("/") or api.base_path.endswith("/") or "?" in api.base_path:
        log.error("API %s has base path %r, which cannot be routed; it is not deployed", api.id, api.base_path)
        return None
    routes, clusters = [], []
    for environment, url in ((SANDBOX, api.sandbox_endpoint), (PRODUCTION, api.production_endpoint)):
        if not url:
            continue
        try:
            upstream = parse_endpoint(url)
        except EndpointError as exc:
            log.error("API %s: %s; its %s environment is not deployed", api.id, exc, environment)
            continue
        cluster = _cluster(api.id, environment, upstream, api.upstream, trust)
        routes.append(_route(api, environment, upstream, cluster.name))
        clusters.append(cluster)
    depth = api.base_path.count("/")
    return TranslatedApi(api_id=api.id, order=(-depth, api.base_path), routes=tuple(routes), clusters=tuple(clusters))


# A segment whose part before `;` is `.` or `..` (`/open/..;/secret`, `%2e%2e;`, `.%2E;x`):
# normalize_path leaves it alone, but Tomcat, Spring, Jetty and other proxies drop `;...`
# and then resolve the dot segment, reaching a path other than the one decided on.
DOT_SEGMENT_WITH_PARAMETERS = r"(?i).*/(\.|%2e){1,2}(;|%3b)[^/]*(/.*)?"


def dot_segment_parameters_route() -> route_components_pb2.Route:
    """The first route: such paths are refused (400 bad_request) whatever authz_server
    answers, with ext_authz off for this route only; authz_server refuses them too."""
    per_route = any_pb2.Any()
    per_route.Pack(ext_authz_pb2.ExtAuthzPerRoute(disabled=True))
    return route_components_pb2.Route(
        name="dot_segment_parameters",
        match=route_components_pb2.RouteMatch(safe_regex=regex_pb2.RegexMatcher(regex=DOT_SEGMENT_WITH_PARAMETERS)),
        direct_response=route_components_pb2.DirectResponseAction(
            status=400, body=base_pb2.DataSource(inline_string="dot segment with parameters")),
        typed_per_filter_config={"envoy.filters.http.ext_authz": per_route},
    )


def not_deployed_route() -> route_components_pb2.Route:
    """The last route: a path no deployed API serves. authz_server answers such requests
    first (api_not_found / api_not_deployed); this only answers what it allowed before
    this Envoy received the API's route, in the same JSON shape."""
    body = ('{"code": "api_not_deployed", "message": "The API is not deployed on this gateway (yet); '
            'try again in a moment."}')
    return route_components_pb2.Route(
        name="not_deployed",
        match=route_components_pb2.RouteMatch(prefix="/"),
        direct_response=route_components_pb2.DirectResponseAction(
            status=404, body=base_pb2.DataSource(inline_string=body)),
        response_headers_to_add=[
            base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key="content-type", value="application/json"),
                                       append_action=base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD),
            base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key="x-portcullis-reason", value="api_not_deployed"),
                                       append_action=base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD),
        ],
    )
