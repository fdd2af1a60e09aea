"""PORTCULLIS_ADMIN_REPLICAS and the addresses it gives Envoy and authz_server, without
processes (tests/integration/test_admin_replica_failover.py runs them)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from authz_server.settings import AuthzSettings
from mesh import components, envoy_config
from mesh.runner import Mesh, MeshError
from portcullis_shared.settings import MeshSettings, SettingsError

PG = "postgresql+psycopg://portcullis@127.0.0.1:5432/portcullis"


def test_replica_i_is_on_the_ports_plus_i_with_one_issuer(tmp_path: Path) -> None:
    settings = MeshSettings(data_dir=tmp_path, admin_rest_port=7000, admin_grpc_port=7100, admin_replicas=3,
                            database_url_override=PG)
    second = settings.admin_replica(2)
    assert (second.admin_rest_port, second.admin_grpc_port) == (7002, 7102)
    assert second.public_url == settings.public_url == "http://127.0.0.1:7000"
    assert settings.admin_grpc_targets == ["127.0.0.1:7100", "127.0.0.1:7101", "127.0.0.1:7102"]
    with pytest.raises(ValueError):
        settings.admin_replica(3)


def test_authz_server_is_given_every_replica(tmp_path: Path) -> None:
    settings = MeshSettings(data_dir=tmp_path, admin_grpc_port=7100, admin_replicas=2, database_url_override=PG)
    env = components.child_env(settings, {})
    authz = components.authz_server(settings, env, python="python", log_dir=None)
    targets = AuthzSettings.from_env(authz.env).admin_grpc_targets
    assert targets == ["127.0.0.1:7100", "127.0.0.1:7101"]


def test_several_admin_grpc_targets_are_read_and_an_empty_one_refused() -> None:
    settings = AuthzSettings.from_env({"PORTCULLIS_ADMIN_GRPC_TARGET": "a:1, b:2"})
    assert settings.admin_grpc_targets == ["a:1", "b:2"] and settings.admin_grpc_target == "a:1"
    with pytest.raises(SettingsError):
        AuthzSettings.from_env({"PORTCULLIS_ADMIN_GRPC_TARGET": "a:1,,b:2"})


def test_envoy_xds_cluster_has_every_replica(tmp_path: Path) -> None:
    settings = MeshSettings(data_dir=tmp_path, admin_grpc_port=7100, admin_replicas=2, database_url_override=PG)
    config = yaml.safe_load(envoy_config.render(settings, gateway_token="pcg_" + "x" * 43))
    xds = next(c for c in config["static_resources"]["clusters"] if c["name"] == "xds")
    ports = [e["endpoint"]["address"]["socket_address"]["port_value"]
             for e in xds["load_assignment"]["endpoints"][0]["lb_endpoints"]]
    assert ports == [7100, 7101]


def test_the_mesh_refuses_replicas_on_sqlite(tmp_path: Path) -> None:
    with pytest.raises(MeshError, match="PostgreSQL"):
        Mesh(MeshSettings(data_dir=tmp_path, admin_replicas=2), base_env={})
