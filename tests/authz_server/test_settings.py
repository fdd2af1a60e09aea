import pytest

from authz_server.settings import AuthzSettings, default_workers, worker_ports
from portcullis_shared.settings import SettingsError


def test_defaults():
    settings = AuthzSettings.from_env({})
    assert settings.admin_grpc_target == "127.0.0.1:9090"
    assert settings.listen_address == "127.0.0.1:9191"
    assert (settings.sync_token, settings.trusted_hops, settings.workers) == (None, 0, default_workers())
    assert (settings.threads, settings.max_concurrent_rpcs) == (4, 256)


def test_overrides():
    settings = AuthzSettings.from_env({
        "PORTCULLIS_ADMIN_GRPC_PORT": "9999", "PORTCULLIS_AUTHZ_PORT": "9292", "PORTCULLIS_TRUSTED_HOPS": "2",
        "PORTCULLIS_SYNC_TOKEN": " pcs_x ", "PORTCULLIS_AUTHZ_WORKERS": "4", "PORTCULLIS_AUTHZ_THREADS": "2",
        "PORTCULLIS_AUTHZ_MAX_CONCURRENT_RPCS": "64",
    })
    assert (settings.threads, settings.max_concurrent_rpcs) == (2, 64)
    assert settings.admin_grpc_target == "127.0.0.1:9999" and settings.listen_address == "127.0.0.1:9292"
    assert (settings.sync_token, settings.trusted_hops, settings.workers) == ("pcs_x", 2, 4)
    assert "pcs_x" not in repr(settings)
    assert AuthzSettings.from_env({"PORTCULLIS_ADMIN_GRPC_TARGET": "admin:1"}).admin_grpc_target == "admin:1"


@pytest.mark.parametrize(
    "env",
    [{"PORTCULLIS_TRUSTED_HOPS": "-1"}, {"PORTCULLIS_TRUSTED_HOPS": "two"}, {"PORTCULLIS_AUTHZ_WORKERS": "0"},
     {"PORTCULLIS_AUTHZ_THREADS": "0"}, {"PORTCULLIS_AUTHZ_MAX_CONCURRENT_RPCS": "0"}],
    ids=["negative-hops", "non-numeric-hops", "zero-workers", "zero-threads", "zero-in-flight"],
)
def test_malformed_settings_are_refused(env):
    with pytest.raises(SettingsError):
        AuthzSettings.from_env(env)


def test_token_settings_defaults_and_overrides():
    defaults = AuthzSettings.from_env({}).tokens
    assert (defaults.jwks_refresh_seconds, defaults.jwks_min_refresh_seconds, defaults.jwks_timeout_seconds) == (300, 10, 1)
    assert (defaults.introspection_timeout_seconds, defaults.introspection_cache_seconds,
            defaults.introspection_negative_cache_seconds) == (1, 60, 10)
    tokens = AuthzSettings.from_env({
        "PORTCULLIS_JWKS_REFRESH_SECONDS": "60", "PORTCULLIS_INTROSPECTION_TIMEOUT_SECONDS": "0.5",
        "PORTCULLIS_TOKEN_CACHE_SIZE": "5", "PORTCULLIS_MAX_INTROSPECTION_CANDIDATES": "1",
    }).tokens
    assert (tokens.jwks_refresh_seconds, tokens.introspection_timeout_seconds) == (60, 0.5)
    assert (tokens.token_cache_size, tokens.max_introspection_candidates) == (5, 1)


@pytest.mark.parametrize(
    "env",
    [{"PORTCULLIS_JWKS_REFRESH_SECONDS": "0"}, {"PORTCULLIS_INTROSPECTION_TIMEOUT_SECONDS": "nan"},
     {"PORTCULLIS_INTROSPECTION_TIMEOUT_SECONDS": "120"}, {"PORTCULLIS_TOKEN_CACHE_SIZE": "0"},
     {"PORTCULLIS_JWKS_MIN_REFRESH_SECONDS": "soon"}],
    ids=["zero-refresh", "nan-timeout", "timeout-too-long", "empty-cache", "non-numeric"],
)
def test_malformed_token_settings_are_refused(env):
    with pytest.raises(SettingsError):
        AuthzSettings.from_env(env)


def test_worker_ports_are_consecutive_from_the_authz_port():
    assert worker_ports(9191, 3) == [9191, 9192, 9193]
    assert AuthzSettings.from_env({"PORTCULLIS_AUTHZ_WORKERS": "3"}).workers == 3


@pytest.mark.parametrize(("name", "value", "field", "expected"), [
    ("PORTCULLIS_AUTHZ_FRONTEND", None, "frontend", "native"),
    ("PORTCULLIS_AUTHZ_FRONTEND", "GRPCIO", "frontend", "grpcio"),
    ("PORTCULLIS_DECISION_LOG", None, "decision_log", "all"),
    ("PORTCULLIS_DECISION_LOG", "denials", "decision_log", "denials"),
    ("PORTCULLIS_DECISION_LOG", " off ", "decision_log", "off"),
])
def test_choices(name, value, field, expected):
    env = {} if value is None else {name: value}
    assert getattr(AuthzSettings.from_env(env), field) == expected


@pytest.mark.parametrize("name", ["PORTCULLIS_AUTHZ_FRONTEND", "PORTCULLIS_DECISION_LOG"])
def test_an_unknown_choice_is_refused(name):
    with pytest.raises(SettingsError, match=name):
        AuthzSettings.from_env({name: "fastest"})
