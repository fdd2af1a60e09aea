"""A local CA (mesh.local_ca, what PORTCULLIS_TLS=auto makes) for the TLS tests, and a
second, unrelated one: a certificate it issued must be refused everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh.local_ca import Issued, ensure_local_ca
from portcullis_shared.settings import MeshSettings
from portcullis_shared.tls import TlsSettings


@pytest.fixture(scope="session")
def local_ca(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Issued]:
    return ensure_local_ca(tmp_path_factory.mktemp("data") / "tls")


@pytest.fixture(scope="session")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Issued]:
    return ensure_local_ca(tmp_path_factory.mktemp("stranger") / "tls")


def auto_settings(data_dir: Path) -> MeshSettings:
    """PORTCULLIS_TLS=auto for `data_dir`, with its certificates made."""
    ensure_local_ca(data_dir / "tls")
    return MeshSettings(data_dir=data_dir, tls=TlsSettings(mode="auto"))
