import pytest

from .oauth import EC_KEY, RSA_KEY, Provider, ProviderState, public_jwk, services


@pytest.fixture(scope="session")
def _provider_server():
    idp = Provider()
    yield idp
    idp.close()


@pytest.fixture
def provider(_provider_server):
    """The in-test identity provider with fresh state (JWKS with rsa-1 and ec-1, no answers)."""
    _provider_server.reset(ProviderState(jwks={"keys": [public_jwk(RSA_KEY, "rsa-1"), public_jwk(EC_KEY, "ec-1")]}))
    yield _provider_server
    if _provider_server.state.stall is not None:
        _provider_server.state.stall.set()


@pytest.fixture
def tokens():
    bundle = services()
    yield bundle
    bundle.stop()
