"""The whole mesh: start in dependency order, notice deaths, stop in reverse order.

`python -m mesh` and the integration tests both drive this class, so the tests start
and stop exactly what `make run` does.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Sequence

from authz_server.settings import worker_count, worker_ports
from mesh import components
from mesh.processes import Component, ComponentError
from mesh.local_ca import ensure_local_ca
from portcullis_shared.private_files import private_directory
from portcullis_shared.settings import MeshSettings
from portcullis_shared.tls import AUTO_DIR_NAME, PlaintextRefused, plaintext_refusal


class MeshError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel considers free right now (another process may take it later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def free_port_block(count: int, host: str = "127.0.0.1", attempts: int = 50) -> int:
    """The first of `count` consecutive ports that are all free right now (authz_server
    workers listen on consecutive ports)."""
    for _ in range(attempts):
        base = free_port(host)
        if base + count <= 65536 and not any(_port_in_use(host, base + offset) for offset in range(1, count)):
            return base
    raise MeshError(f"no {count} consecutive free ports found on {host}")


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


class Mesh:
    """Every process of the local mesh. Start order: both backends and admin_api, then
    authz_server (needs admin_api's sync token) and Envoy (needs nothing to start)."""

    def __init__(
        self,
        settings: MeshSettings,
        *,
        base_env: Mapping[str, str] | None = None,
        log_dir: Path | None = None,
        python: str = sys.executable,
    ) -> None:
        self.settings = settings
        try:
            # Envoy's gateway: admin_api and authz_server check for themselves when they start.
            plaintext_refusal(settings.tls, "Envoy's gateway listener")
        except PlaintextRefused as refused:
            raise MeshError(str(refused)) from None
        if settings.admin_replicas > 1 and settings.database_url.startswith("sqlite"):
            raise MeshError(f"PORTCULLIS_ADMIN_REPLICAS={settings.admin_replicas} needs PORTCULLIS_DATABASE_URL on "
                            "PostgreSQL (postgresql+psycopg://...): replicas share one database, and a SQLite file "
                            "is one machine's")
        private_directory(settings.data_dir)
        if settings.tls.mode == "auto":
            ensure_local_ca(settings.data_dir / AUTO_DIR_NAME)
        env = components.child_env(settings, os.environ if base_env is None else base_env)
        self.authz_workers = worker_count(env)
        private_directory(settings.data_dir)
        built = [
            components.backend(settings, "production", env, python=python, log_dir=log_dir),
            components.backend(settings, "sandbox", env, python=python, log_dir=log_dir),
            *(components.admin_api(settings, env, python=python, log_dir=log_dir, replica=index)
              for index in range(settings.admin_replicas)),
            components.authz_server(settings, env, python=python, log_dir=log_dir),
            components.envoy(settings, env, python=python, log_dir=log_dir),
        ]
        self.components: dict[str, Component] = {component.name: component for component in built}
        self._stages: list[list[str]] = [
            # Replicas start at once: the first start's migrations and bootstrap take turns
            # under a database lock (admin_api.app.bootstrap_lock).
            [components.BACKEND_PRODUCTION, components.BACKEND_SANDBOX,
             *(components.admin_api_name(index) for index in range(settings.admin_replicas))],
            [components.AUTHZ_SERVER, components.ENVOY],
        ]

    def __getitem__(self, name: str) -> Component:
        return self.components[name]

    def __iter__(self) -> Iterator[Component]:
        return iter(self.components.values())

    def __enter__(self) -> "Mesh":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def ports(self) -> dict[str, int]:
        s = self.settings
        return {
            "Envoy gateway": s.gateway_port,
            "Envoy admin": s.envoy_admin_port,
            "admin_api REST": s.admin_rest_port,
            "admin_api gRPC": s.admin_grpc_port,
            **{f"admin_api replica {index} {kind}": port + index
               for index in range(1, s.admin_replicas)
               for kind, port in (("REST", s.admin_rest_port), ("gRPC", s.admin_grpc_port))},
            "authz_server gRPC": s.authz_port,
            **{f"authz_server gRPC (worker {index})": port
               for index, port in enumerate(worker_ports(s.authz_port, self.authz_workers)) if index},
            "authz_server metrics": s.authz_metrics_port,
            "sample backend (production)": s.backend_production_port,
            "sample backend (sandbox)": s.backend_sandbox_port,
        }

    def check_ports_free(self) -> None:
        busy = [f"{what} ({port})" for what, port in self.ports().items() if _port_in_use(self.settings.host, port)]
        if busy:
            raise MeshError(
                "ports already in use on " + self.settings.host + ": " + ", ".join(busy)
                + " (another mesh running? override with the PORTCULLIS_*_PORT variables)"
            )

    def start(self) -> None:
        """Starts every component and waits until each is ready; on any failure stops
        what it started and raises MeshError naming the component."""
        self._start(self._stages)

    def start_control_plane(self) -> None:
        """Only the backends and admin_api (every replica): for a caller that runs its own
        data plane, such as a fleet of authz_servers and Envoys (mesh.fleet)."""
        self._start(self._stages[:1])

    def _start(self, stages: list[list[str]]) -> None:
        self.check_ports_free()
        start_in_stages([[self.components[name] for name in stage] for stage in stages], self.stop)

    def stop(self) -> None:
        """Stops every component, last started first. Safe to call more than once."""
        for component in reversed(list(self.components.values())):
            component.stop()

    def dead(self) -> list[Component]:
        """Components that exited without being asked to."""
        return [component for component in self if component.exited_unexpectedly]


def start_in_stages(stages: Iterable[Sequence[Component]], stop: Callable[[], None],
                    started: list[Component] | None = None) -> None:
    """Start each stage's components at once, then wait until all of them are ready, stage
    after stage (appending each to `started`). On any failure `stop()` what was started and
    raise MeshError naming the component (or the failure itself, e.g. KeyboardInterrupt)."""
    try:
        for stage in stages:
            for component in stage:
                component.start()
                if started is not None:
                    started.append(component)
            for component in stage:
                component.wait_ready()
    except ComponentError as error:
        stop()
        raise MeshError(str(error)) from error
    except BaseException:
        stop()
        raise
