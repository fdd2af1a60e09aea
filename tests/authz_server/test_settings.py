import pytest

from authz_server.settings import AuthzSettings
from portcullis_shared.settings import SettingsError


def test_defaults():
    settings = AuthzSettings.from_env({})
    assert settings.admin_grpc_target == "127.0.0.1:9090"
    assert settings.listen_address == "127.0.0.1:9191"
    assert (settings.sync_token, settings.trusted_hops, settings.workers) == (None, 0, 16)


def test_overrides():
    settings = AuthzSettings.from_env({
        "PORTCULLIS_ADMIN_GRPC_PORT": "9999", "PORTCULLIS_AUTHZ_PORT": "9292", "PORTCULLIS_TRUSTED_HOPS": "2",
        "PORTCULLIS_SYNC_TOKEN": " pcs_x ", "PORTCULLIS_AUTHZ_WORKERS": "4",
    })
    assert settings.admin_grpc_target == "127.0.0.1:9999" and settings.listen_address == "127.0.0.1:9292"
    assert (settings.sync_token, settings.trusted_hops, settings.workers) == ("pcs_x", 2, 4)
    assert "pcs_x" not in repr(settings)
    assert AuthzSettings.from_env({"PORTCULLIS_ADMIN_GRPC_TARGET": "admin:1"}).admin_grpc_target == "admin:1"


@pytest.mark.parametrize(
    "env",
    [{"PORTCULLIS_TRUSTED_HOPS": "-1"}, {"PORTCULLIS_TRUSTED_HOPS": "two"}, {"PORTCULLIS_AUTHZ_WORKERS": "0"}],
    ids=["negative-hops", "non-numeric-hops", "zero-workers"],
)
def test_malformed_settings_are_refused(env):
    with pytest.raises(SettingsError):
        AuthzSettings.from_env(env)
