"""Test configuration: modest hypothesis settings so the whole suite stays fast on 2 cores."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "stagegate",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=1_000, deadline=None)
settings.load_profile("stagegate")
