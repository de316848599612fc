"""Validating what an LMS sends: every check on every message, in one place.

PyLTI1p3 checks the OIDC state (cookie and cache), the JWT's format and RS256 signature against the platform's key
set, the nonce (issued by this tool), the registration (issuer and client id, from `aud`), the deployment and the
message type. On top of it, here:
- a nonce is good for one launch (PyLTI1p3 accepts the same launch posted again: a replay);
- `exp` and `iat` must be present (PyJWT checks them only when they are), and `iat` not in the future;
- with several audiences, `azp` must be present, and whenever present it must be our client id;
- a deployment must be registered and active: django-lti would quietly create an unknown one (inactive), so that a
  refused launch still left a row behind; this config creates nothing;
- the LTI Proctoring Services messages (LtiStartProctoring, LtiEndAssessment), which PyLTI1p3 does not know, with
  their required claims.
Anything wrong raises LaunchRefused with a sentence for the person who clicked, and nothing is created.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import cache
from lti_tool.models import LtiDeployment, LtiLaunch
from lti_tool.utils import DjangoToolConfig, _prepare_deployment
from pylti1p3.contrib.django import DjangoCacheDataStorage, DjangoMessageLaunch
from pylti1p3.exception import LtiException

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
AP = "https://purl.imsglobal.org/spec/lti-ap/claim/"
START_PROCTORING = "LtiStartProctoring"
END_ASSESSMENT = "LtiEndAssessment"
PROCTORING_MESSAGES = (START_PROCTORING, END_ASSESSMENT)
# Clock skew allowed between the platform and this server, seconds.
LEEWAY_S = 60


class LaunchRefused(Exception):
    """A message that cannot be trusted; `message` says why, for the person who clicked, without internals."""

    def __init__(self, message: str, *, cookies_blocked: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.cookies_blocked = cookies_blocked


class StrictToolConfig(DjangoToolConfig):
    """django-lti's registration lookup, but a deployment must already be registered (in the admin) and active."""

    def _deployment(self, **lookups: Any):
        self.deployment = LtiDeployment.objects.filter(is_active=True, registration__is_active=True, **lookups).first()
        return _prepare_deployment(self.deployment) if self.deployment else None

    def find_deployment(self, iss, deployment_id):
        return self._deployment(
            registration__uuid=self.registration_uuid, registration__issuer=iss, deployment_id=deployment_id
        )

    def find_deployment_by_params(self, iss, deployment_id, client_id, *args, **kwargs):
        lookups = {"registration__issuer": iss, "registration__client_id": client_id, "deployment_id": deployment_id}
        if self.registration_uuid is not None:
            lookups["registration__uuid"] = self.registration_uuid
        return self._deployment(**lookups)


class ExamMessageLaunch(DjangoMessageLaunch):
    """PyLTI1p3's launch with the extra checks above."""

    def __init__(self, request, *args: Any, **kwargs: Any) -> None:
        super().__init__(request, *args, **kwargs)
        self.set_jwt_verify_options({"verify_aud": False, "require": ["exp", "iat"]})

    def save_launch_data(self):
        """The last step, once everything else is verified. PyLTI1p3 checks that this tool issued the nonce, but
        lets the same launch be posted again; here a nonce is good for one launch only (the mark outlives the
        token)."""
        body = self._get_jwt_body()
        ttl = max(int(float(body.get("exp", 0)) - time.time()), 0) + 2 * LEEWAY_S
        if not cache.add(f"lti-nonce-used:{body['nonce']}", 1, timeout=ttl):
            raise LtiException("Invalid Nonce: already used")
        return super().save_launch_data()

    def validate_registration(self):
        super().validate_registration()
        body = self._get_jwt_body()
        audiences = body.get("aud") if isinstance(body.get("aud"), list) else [body.get("aud")]
        azp = body.get("azp")
        if (len(audiences) > 1 and not azp) or (azp is not None and azp != self._registration.get_client_id()):
            raise LtiException("The token's authorized party (azp) is not this tool")
        if float(body.get("iat", 0)) > time.time() + LEEWAY_S:
            raise LtiException("The token was issued in the future (iat)")
        return self

    def validate_message(self):
        body = self._get_jwt_body()
        kind = body.get(LTI + "message_type")
        if kind not in PROCTORING_MESSAGES:
            return super().validate_message()
        if body.get(LTI + "version") != "1.3.0":
            raise LtiException("Wrong LTI version")
        if not body.get(LTI + "resource_link", {}).get("id"):
            raise LtiException("Missing resource link id")
        if not body.get("sub"):
            raise LtiException("Missing user (sub)")
        if AP + "attempt_number" not in body:
            raise LtiException("Missing attempt number")
        if kind == START_PROCTORING and not body.get(AP + "start_assessment_url"):
            raise LtiException("Missing start assessment URL")
        return self


def launch_validate(request) -> LtiLaunch:
    """The validated launch of this POST (an id_token and its state), or LaunchRefused."""
    message = ExamMessageLaunch(request, StrictToolConfig(), launch_data_storage=DjangoCacheDataStorage())
    try:
        message.validate()
    except LtiException as exc:
        raise _refusal(str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - a malformed token can fail anywhere in parsing; refuse it the same way
        raise LaunchRefused("This launch could not be read. Please start it again from your course.") from exc
    return LtiLaunch(message)


def launch_restore(request, launch_id: str) -> LtiLaunch | None:
    """A launch validated earlier in this browser session (kept in the cache), or None when it has expired."""
    try:
        message = ExamMessageLaunch.from_cache(
            launch_id, request, StrictToolConfig(), launch_data_storage=DjangoCacheDataStorage()
        )
    except LtiException:
        return None
    return LtiLaunch(message)


def _refusal(reason: str) -> LaunchRefused:
    lowered = reason.lower()
    if "state" in lowered or "cookie" in lowered:
        return LaunchRefused(
            "Your browser did not keep this launch's sign-in cookie, which happens inside a course page when "
            "third-party cookies are blocked. Open the exam in a new window from your course and it will work.",
            cookies_blocked=True,
        )
    if "nonce" in lowered:
        return LaunchRefused("This launch has already been used. Please start it again from your course.")
    if "deployment" in lowered:
        return LaunchRefused(
            "Your course's connection to this exam platform is not registered here. Please ask your LMS "
            "administrator to add its deployment id in the exam platform's admin."
        )
    if "registration" in lowered or "client id" in lowered or "azp" in lowered:
        return LaunchRefused("This launch was not meant for this exam platform, so it was refused.")
    if "expired" in lowered or "iat" in lowered or "decode" in lowered or "signature" in lowered:
        return LaunchRefused(
            "This launch could not be verified: its signature is wrong or it has expired. Please start it again "
            "from your course."
        )
    return LaunchRefused(
        "This launch could not be verified, so it was refused. Please start it again from your course."
    )
