"""Shared fixtures and the REQUIRE_SERVICES rule.

Tests that need PostgreSQL, Redis, a Celery worker or Chromium run for real in CI, where REQUIRE_SERVICES=1 turns a
missing service into a failure. On a laptop without them they skip, and the reason is printed (-ra).
"""

from __future__ import annotations

import os

import pytest

REQUIRE_SERVICES = os.getenv("REQUIRE_SERVICES", "") in ("1", "true", "yes")


def service_missing(reason: str) -> None:
    """Fail under REQUIRE_SERVICES, skip otherwise. Call it when a service a test needs is not there."""
    if REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES is set but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache, so rate-limit windows never leak from one test into the next."""
    from django.core.cache import cache

    cache.clear()
    yield
