"""A minimal ADS client (what Envoy does on its xDS stream), for tests over real gRPC."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import grpc
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.rpc import status_pb2

from admin_api.xds.resources import CLUSTER_TYPE, ROUTE_TYPE

_END = object()


class AdsClient:
    def __init__(self, target: str, token: str | None, node_id: str = "test-envoy") -> None:
        self.channel = grpc.insecure_channel(target)
        self.node_id = node_id
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()
        metadata = [("authorization", f"Bearer {token}")] if token else []
        self._responses = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self.channel).StreamAggregatedResources(
            self._requests(), metadata=metadata)
        self._first = True
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._drain, daemon=True).start()

    def _requests(self) -> Iterator[discovery_pb2.DiscoveryRequest]:
        while True:
            item = self._outbox.get()
            if item is _END:
                return
            yield item

    def send(self, type_url: str, *, version: str = "", nonce: str = "", names: tuple[str, ...] = (),
             error: str | None = None) -> None:
        request = discovery_pb2.DiscoveryRequest(type_url=type_url, version_info=version, response_nonce=nonce,
                                                 resource_names=list(names))
        if self._first:
            request.node.CopyFrom(base_pb2.Node(id=self.node_id, cluster="tests"))
            self._first = False
        if error is not None:
            request.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
        self._outbox.put(request)

    def _drain(self) -> None:
        try:
            for response in self._responses:
                self._inbox.put(response)
        except grpc.RpcError as error:
            self._inbox.put(error)

    def receive(self, timeout: float = 10.0) -> discovery_pb2.DiscoveryResponse:
        try:
            item = self._inbox.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError("no DiscoveryResponse in time") from None
        if isinstance(item, grpc.RpcError):
            raise item
        return item

    def ack(self, response: discovery_pb2.DiscoveryResponse) -> None:
        self.send(response.type_url, version=response.version_info, nonce=response.nonce,
                  names=("gateway",) if response.type_url == ROUTE_TYPE else ())

    def close(self) -> None:
        self._outbox.put(_END)
        self._responses.cancel()
        self.channel.close()


def clusters(response: discovery_pb2.DiscoveryResponse) -> dict[str, cluster_pb2.Cluster]:
    assert response.type_url == CLUSTER_TYPE
    out = {}
    for resource in response.resources:
        cluster = cluster_pb2.Cluster()
        resource.Unpack(cluster)
        out[cluster.name] = cluster
    return out


def cluster_routes(response: discovery_pb2.DiscoveryResponse) -> set[str]:
    """The clusters' names without their content digest: `api.<id>.<environment>`."""
    return {name.rpartition(".")[0] for name in clusters(response)}


def route_config(response: discovery_pb2.DiscoveryResponse) -> route_pb2.RouteConfiguration:
    assert response.type_url == ROUTE_TYPE
    config = route_pb2.RouteConfiguration()
    response.resources[0].Unpack(config)
    return config
