import pytest

from .oauth import services


@pytest.fixture
def tokens():
    bundle = services()
    yield bundle
    bundle.stop()
