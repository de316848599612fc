"""Shared fixtures and the REQUIRE_SERVICES rule.

Tests that need PostgreSQL, Redis, a Celery worker or Chromium run for real in CI, where REQUIRE_SERVICES=1 turns a
missing service into a failure. On a laptop without them they skip, and the reason is printed (-ra).
"""

from __future__ import annotations

import os

import pytest
from django.conf import settings

REQUIRE_SERVICES = os.getenv("REQUIRE_SERVICES", "") in ("1", "true", "yes")
# No housekeeping thread in the test process (it imports the ASGI app) nor in the servers tests start: it would touch
# the database behind the tests' backs. tests/test_housekeeping.py turns it on for its own server.
os.environ["HOUSEKEEPING"] = "off"
if settings.configured:  # pytest-django may have read the settings already
    settings.HOUSEKEEPING = "off"


def service_missing(reason: str) -> None:
    """Fail under REQUIRE_SERVICES, skip otherwise. Call it when a service a test needs is not there."""
    if REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES is set but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _private_storage(settings, tmp_path):
    """Private files (evidence, enrolment and reference photos) of each test go to its own folder, never to the
    developer's DATA_DIR."""
    settings.PRIVATE_STORAGE_DIR = tmp_path / "private"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache, so rate-limit windows never leak from one test into the next."""
    from django.core.cache import cache

    cache.clear()
    yield


def sign_in(client, username: str, password: str) -> bool:
    """Sign in through the real login form, as a browser does (and through django-axes' throttle, which refuses
    Django's test-client `login()`: it needs the request to count attempts). True when the form let them in."""
    response = client.post("/accounts/login/", {"username": username, "password": password})
    return response.status_code == 302
