"""`python -m mesh` (what `make run` starts): the whole local mesh in the foreground.

Ctrl-C or SIGTERM stops every process it started. If one of them dies on its own, the
launcher says which and stops the rest, exiting non-zero.
"""

from __future__ import annotations

import signal
import sys
import time
from types import FrameType

from mesh.components import MissingBinary
from mesh.runner import Mesh, MeshError
from portcullis_shared.settings import MeshSettings, SettingsError

WATCH_INTERVAL_SECONDS = 0.5


class StopRequested(Exception):
    pass


def _request_stop(signum: int, _frame: FrameType | None) -> None:
    raise StopRequested(signal.Signals(signum).name)


def _say(message: str) -> None:
    print(f"mesh: {message}", file=sys.stderr, flush=True)


def summary(mesh: Mesh) -> str:
    s = mesh.settings
    host = s.host
    scheme = s.rest_scheme   # https everywhere with PORTCULLIS_TLS
    tls = s.tls_files
    tls_option = "" if tls is None else f" --cacert {tls.ca_file}"
    lines = [
        "Portcullis is running (Ctrl-C stops everything):",
        f"  API gateway (Envoy)        {scheme}://{host}:{s.gateway_port}/",
        f"  Envoy admin                http://{host}:{s.envoy_admin_port}/",
        f"  admin API (REST)           {scheme}://{host}:{s.admin_rest_port}/  (OpenAPI: /openapi.json)",
        f"  admin API (gRPC)           {host}:{s.admin_grpc_port}",
        *(f"  admin API replica {index}      {scheme}://{host}:{s.admin_rest_port + index}/  gRPC {host}:{s.admin_grpc_port + index}"
          for index in range(1, s.admin_replicas)),
        f"  authz_server (gRPC)        {host}:{s.authz_port}",
        f"  authz_server metrics       http://{host}:{s.authz_metrics_port}/metrics  (Prometheus, no credential)",
        f"  admin API metrics          {scheme}://{host}:{s.admin_rest_port}/metrics",
        f"  sample backend production  http://{host}:{s.backend_production_port}/",
        f"  sample backend sandbox     http://{host}:{s.backend_sandbox_port}/",
        f"  data directory             {s.data_dir}",
        f"  admin token file           {s.admin_token_file}",
        "",
        f'  export PORTCULLIS_TOKEN="$(cat {s.admin_token_file})"',
        f'  curl{tls_option} -H "authorization: Bearer $PORTCULLIS_TOKEN" {scheme}://{host}:{s.admin_rest_port}/v1/apis',
    ]
    if tls is not None:
        lines.insert(-3, f"  TLS: every client verifies against {tls.ca_file}")
    for component in mesh:
        lines.append(f"  pid {component.pid:<8} {component.name}")
    return "\n".join(lines)


def _watch(mesh: Mesh) -> int:
    while True:
        time.sleep(WATCH_INTERVAL_SECONDS)
        dead = mesh.dead()
        if dead:
            for component in dead:
                _say(f"{component.name} (pid {component.pid}) exited unexpectedly with code {component.returncode}")
            return 1


def main() -> int:
    try:
        settings = MeshSettings.from_env()
        settings.tls_files  # noqa: B018 - a half-set certificate setting stops here, by name
    except SettingsError as error:
        _say(f"bad setting: {error}")
        return 2
    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)
    mesh: Mesh | None = None
    try:
        mesh = Mesh(settings)
        _say(f"starting in {settings.data_dir}")
        mesh.start()
        print(summary(mesh), flush=True)
        code = _watch(mesh)
        _say("stopping everything")
        return code
    except StopRequested as stop:
        _say(f"{stop.args[0]} received, stopping everything")
        return 0
    except (MeshError, MissingBinary, SettingsError) as error:
        _say(f"cannot start: {error}")
        return 1
    finally:
        # A second Ctrl-C must not leave children behind half-way through the stop.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if mesh is not None:
            mesh.stop()
            _say("stopped")


if __name__ == "__main__":
    sys.exit(main())
