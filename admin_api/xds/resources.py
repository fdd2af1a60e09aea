"""The whole configuration every Envoy gets, kept per API so that one API change costs
one API's translation plus joining bytes (no re-serialization of the other APIs).

A DiscoveryResponse is serialized once per version and type and shared by every stream:
protobuf's wire format lets a message be built by concatenating its fields, so the
route table is the cached bytes of each API's routes joined in order, and each stream
appends only its own nonce.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import any_pb2

from admin_api.xds.translate import (
    TlsTrust, TranslatedApi, dot_segment_parameters_route, not_deployed_route, translate,
)
from portcullis.admin.v1 import admin_pb2

CLUSTER_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ROUTE_TYPE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
ROUTE_CONFIG_NAME = "gateway"          # the listener's RDS name in the bootstrap
VIRTUAL_HOST_NAME = "apis"
# Clusters before routes: a route never arrives before the cluster it names.
TYPE_ORDER = (CLUSTER_TYPE, ROUTE_TYPE)
TYPE_NAMES = {CLUSTER_TYPE: "clusters", ROUTE_TYPE: "routes"}

_VIRTUAL_HOST_ROUTES = route_components_pb2.VirtualHost.DESCRIPTOR.fields_by_name["routes"].number
_ROUTE_CONFIG_VIRTUAL_HOSTS = route_pb2.RouteConfiguration.DESCRIPTOR.fields_by_name["virtual_hosts"].number
_RESPONSE_RESOURCES = discovery_pb2.DiscoveryResponse.DESCRIPTOR.fields_by_name["resources"].number


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def length_delimited(field_number: int, payload: bytes) -> bytes:
    """One length-delimited field (an embedded message) in protobuf wire format."""
    return _varint(field_number << 3 | 2) + _varint(len(payload)) + payload


_ANY_TYPE_URL = any_pb2.Any.DESCRIPTOR.fields_by_name["type_url"].number
_ANY_VALUE = any_pb2.Any.DESCRIPTOR.fields_by_name["value"].number


def _any_bytes(message_type: str, payload: bytes) -> bytes:
    """A serialized Any, assembled without copying `payload` into a message first."""
    return length_delimited(_ANY_TYPE_URL, message_type.encode()) + length_delimited(_ANY_VALUE, payload)


@dataclass(frozen=True)
class CachedApi:
    translated: TranslatedApi
    route_fields: bytes                       # each route as a VirtualHost.routes field
    cluster_resources: tuple[tuple[str, bytes], ...]   # name, and the cluster as a DiscoveryResponse.resources field


@dataclass(frozen=True)
class XdsSnapshot:
    version: str                              # the change-log revision of the newest API change
    sequence: int                             # bumps on every new snapshot in this process
    responses: Mapping[str, bytes]            # type URL → serialized DiscoveryResponse without nonce
    api_count: int = 0
    cluster_count: int = 0
    # Cluster name → its DiscoveryResponse.resources field, as in responses[CLUSTER_TYPE]:
    # a stream adds the clusters its Envoy's routes still name (see session).
    cluster_fields: Mapping[str, bytes] = field(default_factory=dict)


class ConfigBuilder:
    """The deployed APIs, translated once each; `build` makes a snapshot of them all."""

    def __init__(self, trust: TlsTrust) -> None:
        self._trust = trust
        self._apis: dict[str, CachedApi] = {}
        self._order: list[str] | None = []   # API ids in route order; None: to be sorted again
        self._sequence = 0
        self._first = length_delimited(_VIRTUAL_HOST_ROUTES, dot_segment_parameters_route().SerializeToString())
        self._fallback = length_delimited(_VIRTUAL_HOST_ROUTES, not_deployed_route().SerializeToString())

    def upsert(self, api: admin_pb2.Api) -> None:
        translated = translate(api, self._trust)
        if translated is None or not translated.routes:
            self.delete(api.id)
            return
        previous = self._apis.get(api.id)
        if previous is None or previous.translated.order != translated.order:
            self._order = None  # an endpoint change keeps the order: no sort for it
        self._apis[api.id] = CachedApi(
            translated=translated,
            route_fields=b"".join(length_delimited(_VIRTUAL_HOST_ROUTES, r.SerializeToString())
                                  for r in translated.routes),
            cluster_resources=tuple(
                (c.name, length_delimited(_RESPONSE_RESOURCES, _any_bytes(CLUSTER_TYPE, c.SerializeToString())))
                for c in translated.clusters),
        )

    def delete(self, api_id: str) -> None:
        if self._apis.pop(api_id, None) is not None:
            self._order = None

    def clear(self) -> None:
        self._apis.clear()
        self._order = []

    def build(self, version: str) -> XdsSnapshot:
        if self._order is None:
            self._order = sorted(self._apis, key=lambda api_id: self._apis[api_id].translated.order)
        ordered = [self._apis[api_id] for api_id in self._order]
        virtual_host = (route_components_pb2.VirtualHost(name=VIRTUAL_HOST_NAME, domains=["*"]).SerializeToString()
                        + self._first + b"".join(cached.route_fields for cached in ordered) + self._fallback)
        route_config = (route_pb2.RouteConfiguration(name=ROUTE_CONFIG_NAME).SerializeToString()
                        + length_delimited(_ROUTE_CONFIG_VIRTUAL_HOSTS, virtual_host))
        clusters = dict(named for cached in ordered for named in cached.cluster_resources)
        self._sequence += 1
        return XdsSnapshot(
            version=version,
            sequence=self._sequence,
            responses={
                CLUSTER_TYPE: _response_head(version, CLUSTER_TYPE) + b"".join(clusters.values()),
                ROUTE_TYPE: _response_head(version, ROUTE_TYPE)
                + length_delimited(_RESPONSE_RESOURCES, _any_bytes(ROUTE_TYPE, route_config)),
            },
            api_count=len(ordered),
            cluster_count=len(clusters),
            cluster_fields=clusters,
        )


def _response_head(version: str, type_url: str) -> bytes:
    return discovery_pb2.DiscoveryResponse(version_info=version, type_url=type_url).SerializeToString()


def with_nonce(response: bytes, nonce: str) -> bytes:
    return response + discovery_pb2.DiscoveryResponse(nonce=nonce).SerializeToString()


def cluster_of(resource: any_pb2.Any) -> cluster_pb2.Cluster:
    cluster = cluster_pb2.Cluster()
    resource.Unpack(cluster)
    return cluster
