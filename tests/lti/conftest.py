"""Fixtures for the LTI tests: a real LTI 1.3 platform (tests/lti/platform.py, on lti1p3platform) in a process of its
own, registered with this tool in the admin's models."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from jwcrypto.jwk import JWK

from tests.browser import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
USERS = {
    "alice-sub": {"name": "Alice Adams", "given_name": "Alice", "family_name": "Adams", "email": "alice@uni.example",
                  "roles": [LEARNER]},
    "bob-sub": {"name": "Bob Brown", "given_name": "Bob", "family_name": "Brown", "email": "bob@uni.example",
                "roles": [LEARNER]},
    "ivan-sub": {"name": "Ivan Ivanov", "given_name": "Ivan", "family_name": "Ivanov", "email": "ivan@uni.example",
                 "roles": [INSTRUCTOR]},
    "gone-sub": {"name": "Gone Student", "roles": [LEARNER], "status": "Inactive"},
}  # fmt: skip


def rsa_pair() -> tuple[str, str]:
    key = JWK.generate(kty="RSA", size=2048)
    return key.export_to_pem(private_key=True, password=None).decode(), key.export_to_pem().decode()


@dataclass
class Platform:
    url: str
    issuer: str
    client_id: str
    deployment_id: str
    private_key: str
    registration: object
    tool_url: str

    def start(self, user: str, *, link: str = "rl-1", kind: str = "resource", attempt: int = 1) -> str:
        return f"{self.url}/start?user={user}&link={link}&kind={kind}&attempt={attempt}"

    def records(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/records", timeout=10) as response:
            return json.loads(response.read())


def _registration(*, issuer: str, client_id: str, deployment_id: str, platform_url: str):
    from lti_tool.models import LtiDeployment, LtiRegistration

    registration = LtiRegistration.objects.create(
        name="Test LMS",
        uuid=uuid.uuid4(),
        issuer=issuer,
        client_id=client_id,
        auth_url=f"{platform_url}/authorize",
        token_url=f"{platform_url}/token",
        keyset_url=f"{platform_url}/jwks",
    )
    LtiDeployment.objects.create(registration=registration, deployment_id=deployment_id, is_active=True)
    return registration


def _serve(tmp_path: Path, *, tool_url: str, host: str = "localhost", extra: dict | None = None):
    # localhost, like the live server, by default: the launch's cross-site POST then stays same-site over plain
    # HTTP, as HTTPS with SameSite=None cookies makes it in a real deployment. 127.0.0.1 makes the LMS another site.
    port = free_port()
    url = f"http://{host}:{port}"
    private_key, public_key = rsa_pair()
    registration = _registration(issuer=url, client_id="exam-tool", deployment_id="dep-1", platform_url=url)
    config = {
        "issuer": url,
        "client_id": "exam-tool",
        "deployment_id": "dep-1",
        "private_key": private_key,
        "public_key": public_key,
        "tool_login_url": f"{tool_url}/lti/login/{registration.uuid}/",
        "tool_launch_url": f"{tool_url}/lti/launch/",
        "tool_jwks_url": f"{tool_url}/lti/jwks/",
        "users": USERS,
        "context": {"id": "chem-101", "title": "Chemistry 101"},
        "links": {"rl-1": {"title": "Midterm (proctored)"}},
        **(extra or {}),
    }
    config_path = tmp_path / "platform.json"
    config_path.write_text(json.dumps(config))
    log = tmp_path / "platform.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.lti.platform", "--config", str(config_path), "--port", str(port)],
        cwd=ROOT,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    wait_for_port(port, proc, log)
    return proc, Platform(
        url=url,
        issuer=url,
        client_id="exam-tool",
        deployment_id="dep-1",
        private_key=private_key,
        registration=registration,
        tool_url=tool_url,
    )


@pytest.fixture
def platform_for(tmp_path):
    """platform_for(tool_url, **config) -> Platform: the platform server, stopped after the test."""
    procs = []

    def start(tool_url: str, *, host: str = "localhost", **extra) -> Platform:
        proc, platform = _serve(tmp_path, tool_url=tool_url.rstrip("/"), host=host, extra=extra)
        procs.append(proc)
        return platform

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
