"""A fleet of gateways on one machine: several authz_server replicas (one worker each) and
several Envoys, beside one mesh's admin_api and backends (started with
`Mesh.start_control_plane`, so the mesh's own authz_server and Envoy stay down).

Envoy `j`'s ext_authz cluster is its own share of the replicas (ten replicas and two
Envoys: five each), the way a fleet runs the decision beside each proxy. Every replica
follows admin_api's `Watch` on its own and every Envoy its own xDS stream, so a change
has to reach each of them separately: what the fleet test and `make bench` measure.
A replica serves no /metrics (one port fewer each; the mesh's authz_server has them).
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import grpc

from mesh import components
from mesh.ports import free_ports
from mesh.processes import Component
from mesh.runner import free_port_block, start_in_stages
from portcullis_shared.settings import MeshSettings
from portcullis_shared.tls_context import grpc_channel_credentials

REPLICA_ENV = {"PORTCULLIS_AUTHZ_WORKERS": "1", "PORTCULLIS_AUTHZ_METRICS": "off"}
# Ten Python processes importing grpc and protobuf at once on a small machine are slow.
READY_TIMEOUT_SECONDS = 120.0


def shares(replicas: int, envoys: int) -> list[range]:
    """Which replicas (by index) each Envoy's ext_authz cluster has: consecutive, as even as
    can be. No Envoy at all is a fleet whose replicas are asked directly (the bench)."""
    if not 0 <= envoys <= replicas:
        raise ValueError(f"{envoys} Envoys for {replicas} authz_server replicas")
    if envoys == 0:
        return []
    size, extra = divmod(replicas, envoys)
    ranges, start = [], 0
    for index in range(envoys):
        end = start + size + (1 if index < extra else 0)
        ranges.append(range(start, end))
        start = end
    return ranges


@dataclass
class Gateway:
    """One Envoy of the fleet and the replicas behind it."""

    envoy: Component
    settings: MeshSettings          # the mesh's, with this Envoy's gateway and admin ports
    replicas: range                 # indices into Fleet.replicas

    @property
    def base_url(self) -> str:
        return f"{self.settings.rest_scheme}://{self.settings.host}:{self.settings.gateway_port}"


@dataclass
class Fleet:
    settings: MeshSettings          # the mesh's (admin_api, data directory, TLS)
    replicas: list[Component]       # authz_server-0 ... authz_server-(N-1)
    authz_ports: list[int]          # replica i serves on authz_ports[i]
    gateways: list[Gateway]
    _started: list[Component] = field(default_factory=list)

    @property
    def authz_targets(self) -> list[str]:
        return [f"{self.settings.host}:{port}" for port in self.authz_ports]

    def authz_channel(self, index: int) -> grpc.Channel:
        """A channel to replica `index`, as Envoy reaches it (mTLS with the mesh's client
        certificate when the mesh runs TLS)."""
        target, tls = self.authz_targets[index], self.settings.tls_files
        if tls is None:
            return grpc.insecure_channel(target)
        return grpc.secure_channel(target, grpc_channel_credentials(tls.ca_file, identity=tls.require("client")))

    def start(self) -> None:
        """Every replica, then every Envoy (each waits for all of its kind to be ready:
        they start at once); on a failure stops what it started and raises MeshError."""
        start_in_stages((self.replicas, [gateway.envoy for gateway in self.gateways]), self.stop, self._started)

    def stop(self) -> None:
        for component in reversed(self._started):
            component.stop()
        self._started.clear()

    def dead(self) -> list[Component]:
        return [component for component in self._started if component.exited_unexpectedly]


def build(settings: MeshSettings, base_env: Mapping[str, str], *, replicas: int = 10, envoys: int = 2,
          log_dir: Path | None = None, python: str = sys.executable) -> Fleet:
    """`replicas` authz_servers on consecutive free ports and `envoys` Envoys on ports of
    their own, for the mesh of `settings` (its admin_api must be running before start)."""
    authz_base = free_port_block(replicas)
    authz_ports = list(range(authz_base, authz_base + replicas))
    own_ports = iter(free_ports(2 * envoys, range(authz_base, authz_base + replicas)))
    env = {**base_env, **REPLICA_ENV}
    authz = []
    for index, port in enumerate(authz_ports):
        # TCP only: with PORTCULLIS_AUTHZ_UNIX_SOCKET every replica would claim the mesh's one socket path.
        own = dataclasses.replace(settings, authz_port=port, authz_unix_socket=None)
        component = components.authz_server(own, components.child_env(own, env), python=python, log_dir=log_dir,
                                            name=f"{components.AUTHZ_SERVER}-{index}")
        component.ready_timeout = READY_TIMEOUT_SECONDS
        authz.append(component)
    gateways = []
    for index, share in enumerate(shares(replicas, envoys)):
        own = dataclasses.replace(settings, gateway_port=next(own_ports), envoy_admin_port=next(own_ports))
        envoy = components.envoy(own, components.child_env(own, base_env), python=python, log_dir=log_dir,
                                 name=f"{components.ENVOY}-{index}", node_id=f"portcullis-gateway-{index}",
                                 authz_ports=[authz_ports[i] for i in share])
        envoy.ready_timeout = READY_TIMEOUT_SECONDS
        gateways.append(Gateway(envoy, own, share))
    return Fleet(settings, authz, authz_ports, gateways)
