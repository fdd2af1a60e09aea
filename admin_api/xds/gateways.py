"""Every Envoy that follows this admin_api: what it acknowledged and what it rejected.

The one place that knows each gateway's state (the xDS streams write it; the
ListGateways RPC and metrics read `GatewayRegistry.gateways()`). Keyed by node id: an
Envoy that reconnects (or restarts) keeps its entry and its last NACK.
"""

from __future__ import annotations

import logging
import re
import threading
import weakref
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Mapping

from admin_api.xds.resources import TYPE_NAMES

log = logging.getLogger(__name__)

MAX_DISCONNECTED = 1000          # forgotten oldest first beyond this
MAX_DETAIL = 4000                # Envoy's messages are short; a huge one is cut
_RESOURCE_NAME = re.compile(r"api\.([0-9A-Za-z_-]+)\.(?:production|sandbox)")


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Nack:
    type: str                    # "clusters" or "routes"
    version: str
    detail: str
    api_ids: tuple[str, ...]
    time: datetime


@dataclass(frozen=True)
class GatewayStatus:
    node_id: str
    node_cluster: str = ""
    envoy_version: str = ""
    peer: str = ""
    streams: int = 0
    connected_at: datetime | None = None
    disconnected_at: datetime | None = None
    acked: Mapping[str, str] = field(default_factory=dict)   # type name → version
    last_nack: Nack | None = None
    subscribed: frozenset[str] = frozenset()                  # type names it follows

    @property
    def connected(self) -> bool:
        return self.streams > 0

    @property
    def acked_version(self) -> str:
        """The version every followed type acknowledged; "" when they differ or none did."""
        versions = {self.acked.get(name, "") for name in self.subscribed}
        return versions.pop() if len(versions) == 1 else ""


def apis_named_in(detail: str) -> tuple[str, ...]:
    """The APIs whose cluster or route names Envoy's error message mentions."""
    return tuple(dict.fromkeys(match.group(1) for match in _RESOURCE_NAME.finditer(detail)))


class GatewayRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nodes: dict[str, GatewayStatus] = {}
        # The version this process serves now ("" before its first snapshot).
        self.serving_version = ""

    def _update(self, node_id: str, **changes: object) -> GatewayStatus:
        current = self._nodes.get(node_id) or GatewayStatus(node_id=node_id)
        updated = replace(current, **changes)
        self._nodes[node_id] = updated
        return updated

    def connected(self, node_id: str, *, node_cluster: str, envoy_version: str, peer: str) -> None:
        with self._lock:
            current = self._nodes.get(node_id) or GatewayStatus(node_id=node_id)
            self._update(node_id, node_cluster=node_cluster, envoy_version=envoy_version, peer=peer,
                         streams=current.streams + 1, connected_at=_now(), disconnected_at=None)
        log.info("xDS: gateway %r connected from %s (Envoy %s)", node_id, peer, envoy_version or "?")

    def disconnected(self, node_id: str) -> None:
        with self._lock:
            current = self._nodes.get(node_id)
            if current is None:
                return
            streams = max(0, current.streams - 1)
            self._update(node_id, streams=streams, disconnected_at=None if streams else _now())
            self._forget_oldest_disconnected()
        log.info("xDS: gateway %r disconnected", node_id)

    def subscribed(self, node_id: str, type_url: str) -> None:
        with self._lock:
            current = self._nodes.get(node_id) or GatewayStatus(node_id=node_id)
            self._update(node_id, subscribed=current.subscribed | {TYPE_NAMES.get(type_url, type_url)})

    def acked(self, node_id: str, type_url: str, version: str) -> None:
        with self._lock:
            current = self._nodes.get(node_id) or GatewayStatus(node_id=node_id)
            self._update(node_id, acked={**current.acked, TYPE_NAMES.get(type_url, type_url): version})

    def nacked(self, node_id: str, type_url: str, version: str, detail: str) -> Nack:
        detail = detail[:MAX_DETAIL]
        nack = Nack(type=TYPE_NAMES.get(type_url, type_url), version=version, detail=detail,
                    api_ids=apis_named_in(detail), time=_now())
        with self._lock:
            previous = (self._nodes.get(node_id) or GatewayStatus(node_id=node_id)).last_nack
            self._update(node_id, last_nack=nack)
        repeated = previous is not None and (previous.type, previous.version, previous.detail) == (
            nack.type, nack.version, nack.detail)
        if not repeated:
            # Loud and once: the gateway keeps its previous configuration until a fix.
            log.error("xDS: gateway %r REJECTED %s version %s (APIs: %s): %s", node_id, nack.type, version,
                      ", ".join(nack.api_ids) or "none named", detail)
        return nack

    def gateways(self) -> list[GatewayStatus]:
        """Connected first, then by node id."""
        with self._lock:
            nodes = list(self._nodes.values())
        return sorted(nodes, key=lambda status: (not status.connected, status.node_id))

    def _forget_oldest_disconnected(self) -> None:
        gone = [s for s in self._nodes.values() if not s.connected]
        if len(gone) > MAX_DISCONNECTED:
            gone.sort(key=lambda s: s.disconnected_at or _now())
            for status in gone[: len(gone) - MAX_DISCONNECTED]:
                del self._nodes[status.node_id]


_REGISTRIES: "weakref.WeakKeyDictionary[object, GatewayRegistry]" = weakref.WeakKeyDictionary()
_REGISTRIES_LOCK = threading.Lock()


def registry_for(store: object) -> GatewayRegistry:
    """The registry of the admin_api process that owns `store` (its xDS server and its
    ListGateways handler share it through the store they both hold)."""
    with _REGISTRIES_LOCK:
        registry = _REGISTRIES.get(store)
        if registry is None:
            registry = _REGISTRIES[store] = GatewayRegistry()
        return registry
