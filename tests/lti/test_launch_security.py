"""Every LTI message is checked, and a bad one is refused with a clear page and creates nothing (issue 13).

The platform server (tests/lti/platform.py) serves its real key set; the test signs id_tokens with the platform's
key (or another one) after a real OIDC login at the tool, so the state cookie and the nonce are the tool's own.
"""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from jwcrypto.jwk import JWK
from lti_tool.models import LtiContext, LtiDeployment, LtiResourceLink, LtiUser

from accounts.models import User
from tests.lti.conftest import LEARNER, rsa_pair

pytestmark = pytest.mark.django_db
LAUNCH = "http://testserver/lti/launch/"


@pytest.fixture
def platform(platform_for):
    return platform_for("http://testserver")


def login(client, platform, *, hint: str = "alice-sub") -> str:
    """The OIDC login at the tool, as the platform starts it; returns the nonce the tool issued (its state cookie
    stays in the client)."""
    params = {
        "iss": platform.issuer,
        "login_hint": hint,
        "target_link_uri": LAUNCH,
        "lti_message_hint": "{}",
        "client_id": platform.client_id,
        "lti_deployment_id": platform.deployment_id,
    }
    page = client.get(f"/lti/login/{platform.registration.uuid}/", params)
    assert page.status_code == 200, page.content
    query = parse_qs(urlsplit(page.context["redirect_url"]).query)
    assert query["redirect_uri"] == [LAUNCH] and query["client_id"] == [platform.client_id]
    return query["state"][0], query["nonce"][0]


def id_token(platform, nonce: str, *, key: str | None = None, **changes) -> str:
    now = int(time.time())
    claims = {
        "iss": platform.issuer,
        "aud": platform.client_id,
        "sub": "alice-sub",
        "iat": now,
        "exp": now + 300,
        "nonce": nonce,
        "name": "Alice Adams",
        "https://purl.imsglobal.org/spec/lti/claim/deployment_id": platform.deployment_id,
        "https://purl.imsglobal.org/spec/lti/claim/message_type": "LtiResourceLinkRequest",
        "https://purl.imsglobal.org/spec/lti/claim/version": "1.3.0",
        "https://purl.imsglobal.org/spec/lti/claim/target_link_uri": LAUNCH,
        "https://purl.imsglobal.org/spec/lti/claim/resource_link": {"id": "rl-1"},
        "https://purl.imsglobal.org/spec/lti/claim/roles": [LEARNER],
        "https://purl.imsglobal.org/spec/lti/claim/context": {"id": "chem-101", "title": "Chemistry 101"},
    }
    claims.update(changes)
    for name in [k for k, v in claims.items() if v is None]:
        del claims[name]
    platform_kid = json.loads(JWK.from_pem(platform.private_key.encode()).export_public())["kid"]
    return jwt.encode(claims, key or platform.private_key, algorithm="RS256", headers={"kid": platform_kid})


def nothing_created() -> bool:
    return not (
        LtiUser.objects.exists()
        or User.objects.exists()
        or LtiContext.objects.exists()
        or LtiResourceLink.objects.exists()
        or LtiDeployment.objects.filter(is_active=False).exists()
    )


def test_a_good_launch_signs_in_a_new_student(client, platform):
    state, nonce = login(client, platform)
    answer = client.post("/lti/launch/", {"id_token": id_token(platform, nonce), "state": state})
    # The course link is not linked to an exam yet: the student is told so, calmly.
    assert answer.status_code == 404 and "ask your instructor to open it once" in answer.content.decode()
    user = LtiUser.objects.get(sub="alice-sub").auth_user
    assert (user.role, user.first_name, user.last_name) == ("student", "Alice", "Adams")
    assert not user.has_usable_password() and user.username.startswith("lti-")
    assert client.session["_auth_user_id"] == str(user.pk)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("forged signature", "its signature is wrong or it has expired"),
        ("wrong audience", "was not meant for this exam platform"),
        ("another authorized party", "was not meant for this exam platform"),
        ("several audiences, no azp", "was not meant for this exam platform"),
        ("expired", "its signature is wrong or it has expired"),
        ("no expiry", "its signature is wrong or it has expired"),
        ("issued in the future", "its signature is wrong or it has expired"),
        ("unknown deployment", "deployment id"),
        ("nonce not issued by the tool", "already been used"),
        ("another state", "third-party cookies are blocked"),
        ("not a JWT", "could not be verified"),
    ],
)
def test_a_bad_launch_is_refused_with_a_clear_page_and_creates_nothing(client, platform, case, expected):
    state, nonce = login(client, platform)
    now = int(time.time())
    other_key, _ = rsa_pair()
    tokens = {
        "forged signature": lambda: id_token(platform, nonce, key=other_key),
        "wrong audience": lambda: id_token(platform, nonce, aud="some-other-tool"),
        "another authorized party": lambda: id_token(platform, nonce, azp="some-other-tool"),
        "several audiences, no azp": lambda: id_token(platform, nonce, aud=[platform.client_id, "other"]),
        "expired": lambda: id_token(platform, nonce, iat=now - 900, exp=now - 600),
        "no expiry": lambda: id_token(platform, nonce, exp=None),
        "issued in the future": lambda: id_token(platform, nonce, iat=now + 3600, exp=now + 3900),
        "unknown deployment": lambda: id_token(
            platform, nonce, **{"https://purl.imsglobal.org/spec/lti/claim/deployment_id": "dep-unknown"}
        ),
        "nonce not issued by the tool": lambda: id_token(platform, "made-up-nonce"),
        "another state": lambda: id_token(platform, nonce),
        "not a JWT": lambda: "not.a.jwt",
    }
    posted_state = "state-somebody-else" if case == "another state" else state
    answer = client.post("/lti/launch/", {"id_token": tokens[case](), "state": posted_state})
    body = answer.content.decode()
    assert answer.status_code == 403, body
    assert expected in body and "Nothing was recorded" in body
    assert nothing_created()


def test_a_replayed_launch_is_refused(client, platform):
    state, nonce = login(client, platform)
    token = id_token(platform, nonce)
    assert client.post("/lti/launch/", {"id_token": token, "state": state}).status_code == 404  # accepted
    users = User.objects.count()
    replay = client.post("/lti/launch/", {"id_token": token, "state": state})
    assert replay.status_code == 403 and "already been used" in replay.content.decode()
    assert User.objects.count() == users


def test_a_login_for_an_unregistered_platform_or_another_tool_is_refused(client, platform):
    params = {"iss": "https://lms.elsewhere.example", "login_hint": "x", "target_link_uri": LAUNCH}
    answer = client.get(f"/lti/login/{platform.registration.uuid}/", params)
    assert answer.status_code == 400 and "not registered" in answer.content.decode()
    params = {"iss": platform.issuer, "login_hint": "x", "target_link_uri": "https://evil.example/steal"}
    answer = client.get(f"/lti/login/{platform.registration.uuid}/", params)
    assert answer.status_code == 400 and "not meant for this exam platform" in answer.content.decode()


def test_the_key_set_publishes_the_tools_key(client):
    keys = client.get("/lti/jwks/").json()["keys"]
    assert len(keys) == 1 and keys[0]["kty"] == "RSA" and keys[0]["alg"] == "RS256" and "d" not in keys[0]
