"""Fixtures of the hostile-input and fault tests.

The fake identity provider is the one of every test (tests/conftest.py); hypothesis keeps no example database in the
repository and has no deadline (a slow CI machine is not a failure)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "portcullis",
    database=None,
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
)
# A long hunt on demand: `PORTCULLIS_HYPOTHESIS_PROFILE=deep pytest tests/hostile`.
settings.register_profile("deep", parent=settings.get_profile("portcullis"), max_examples=3000)
settings.load_profile(os.environ.get("PORTCULLIS_HYPOTHESIS_PROFILE", "portcullis"))
