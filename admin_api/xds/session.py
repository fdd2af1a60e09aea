"""One Envoy's ADS stream, state of the world: what it follows, what it was sent, what it
acknowledged. Pure protocol; the gRPC servicer feeds it requests and snapshots.

Following Envoy's xDS protocol (and go-control-plane's server): each response carries a
nonce unique on the stream; a request whose `response_nonce` is not the latest one sent
for its type is stale and ignored; with `error_detail` it is a NACK of the version sent
under that nonce (not resent until the configuration changes); otherwise it ACKs
`version_info`. A type is (re)sent when first requested, when its requested names
change, and whenever the snapshot's version moves. Clusters go before routes.

Make before break: a cluster that the new snapshot no longer has (an API moved to another
endpoint, or left) stays in the clusters this stream sends until its Envoy has
acknowledged routes that no longer name it; then the clusters are sent once more without
it. Envoy keeps serving its previous routes until the new ones arrive, and those must
never name a cluster it has already removed (503 "no cluster").
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from envoy.service.discovery.v3 import discovery_pb2

from admin_api.xds.gateways import GatewayRegistry
from admin_api.xds.resources import CLUSTER_TYPE, ROUTE_TYPE, TYPE_ORDER, XdsSnapshot, with_nonce

log = logging.getLogger(__name__)

MAX_NODE_ID = 200


@dataclass
class _TypeState:
    subscribed: bool = False
    names: frozenset[str] = frozenset()
    sent_version: str | None = None
    nonce: str = ""
    resend: bool = False


class AdsSession:
    def __init__(self, registry: GatewayRegistry, peer: str) -> None:
        self._registry = registry
        self._peer = peer
        self._types = {type_url: _TypeState() for type_url in TYPE_ORDER}
        self._nonces = 0
        self._warned_types: set[str] = set()
        self.node_id: str | None = None
        # The clusters named by the routes this Envoy acknowledged, and by those sent since.
        self._acked_route_clusters: dict[str, bytes] = {}
        self._sent_route_clusters: dict[str, bytes] = {}
        self._draining: frozenset[str] = frozenset()   # old clusters in the last clusters sent

    def receive(self, request: discovery_pb2.DiscoveryRequest) -> None:
        if self.node_id is None:
            self._identify(request)
        state = self._types.get(request.type_url)
        if state is None:
            if request.type_url not in self._warned_types:
                self._warned_types.add(request.type_url)
                log.warning("xDS: gateway %r asks for %s, which Portcullis does not serve", self.node_id,
                            request.type_url)
            return
        if request.response_nonce and request.response_nonce != state.nonce:
            return  # answers an older response: a newer one is on its way
        node_id = self.node_id or ""
        if not state.subscribed:
            state.subscribed = True
            self._registry.subscribed(node_id, request.type_url)
        if request.HasField("error_detail") and request.response_nonce:
            self._registry.nacked(node_id, request.type_url, state.sent_version or "", request.error_detail.message)
        elif request.response_nonce:
            self._registry.acked(node_id, request.type_url, request.version_info)
            if request.type_url == ROUTE_TYPE:
                self._routes_acked()
        names = frozenset(request.resource_names)
        if not request.response_nonce or names != state.names:
            state.resend = True
        state.names = names

    def due(self, snapshot: XdsSnapshot | None) -> Iterator[bytes]:
        """The responses this stream needs for `snapshot`, in order, as serialized bytes."""
        if snapshot is None or self.node_id is None:
            return
        for type_url in TYPE_ORDER:
            state = self._types[type_url]
            if not state.subscribed or (not state.resend and state.sent_version == snapshot.version):
                continue
            self._nonces += 1
            state.nonce, state.sent_version, state.resend = str(self._nonces), snapshot.version, False
            response = snapshot.responses[type_url]
            if type_url == CLUSTER_TYPE:
                draining = {name: field for routes in (self._acked_route_clusters, self._sent_route_clusters)
                            for name, field in routes.items() if name not in snapshot.cluster_fields}
                self._draining = frozenset(draining)
                response += b"".join(draining.values())
            elif type_url == ROUTE_TYPE:
                self._sent_route_clusters = dict(snapshot.cluster_fields)
            yield with_nonce(response, state.nonce)

    def _routes_acked(self) -> None:
        self._acked_route_clusters = self._sent_route_clusters
        if self._draining:
            # The old clusters are no longer named by any route this Envoy may use.
            self._types[CLUSTER_TYPE].resend = True

    def close(self) -> None:
        if self.node_id is not None:
            self._registry.disconnected(self.node_id)

    def _identify(self, request: discovery_pb2.DiscoveryRequest) -> None:
        node = request.node
        node_id = (node.id or f"unnamed@{self._peer}")[:MAX_NODE_ID]
        version = node.user_agent_build_version.version
        envoy_version = f"{version.major_number}.{version.minor_number}.{version.patch}" if node.HasField(
            "user_agent_build_version") else node.user_agent_version
        self.node_id = node_id
        self._registry.connected(node_id, node_cluster=node.cluster[:MAX_NODE_ID], envoy_version=envoy_version,
                                 peer=self._peer)
