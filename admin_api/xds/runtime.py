"""admin_api's xDS part, put together: follower → snapshot state → ADS streams, and the
gateway registry ListGateways reads."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import grpc

from admin_api.store.unit_of_work import Store
from admin_api.xds.gateways import GatewayRegistry, registry_for
from admin_api.xds.resources import ConfigBuilder
from admin_api.xds.server import AdsServicer
from admin_api.xds.source import ApiFollower
from admin_api.xds.state import XdsState
from admin_api.xds.translate import TlsTrust
from portcullis_shared.settings import MeshSettings

@dataclass(frozen=True)
class XdsConfig:
    # The PEM file Envoy checks https endpoints against when an API brings no CA bundle:
    # a path on the Envoy host (PORTCULLIS_UPSTREAM_TRUST_STORE).
    trust_store: str = MeshSettings().upstream_trust_store
    poll_interval: float = 0.5

    @classmethod
    def from_settings(cls, settings: MeshSettings) -> "XdsConfig":
        return cls(trust_store=settings.upstream_trust_store)


class XdsRuntime:
    def __init__(self, store: Store, config: XdsConfig = XdsConfig()) -> None:
        self.state = XdsState()
        self.registry: GatewayRegistry = registry_for(store)
        self._stopping = threading.Event()
        self.builder = ConfigBuilder(TlsTrust(system_trust_store=config.trust_store))
        self.follower = ApiFollower(store, self.builder, self.state, poll_interval=config.poll_interval)
        self.servicer = AdsServicer(store, self.state, self.registry, self._stopping)
        self.state.subscribe(self._serving_changed)

    def _serving_changed(self) -> None:
        current = self.state.current
        self.registry.serving_version = current.version if current else ""

    def handler(self) -> grpc.GenericRpcHandler:
        return self.servicer.handler()

    def start(self) -> None:
        self.follower.start()

    def stop(self) -> None:
        self._stopping.set()
        self.servicer.close()
        self.follower.stop()
