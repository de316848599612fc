"""The LMS's side of exams: who a launch is, which exam it opens, and what goes back to the LMS.

- Users are provisioned by (registration, `sub`) through django-lti's LtiUser, never by username or email, so an LMS
  user can never take over a local account; names and email are updated on every launch when sent.
- Roles: Learner is a student; Instructor or ContentDeveloper an instructor. An LMS never makes anyone an admin, and
  a later Learner launch never demotes an instructor (their own test-student views are other LMS users).
- A resource link opens one exam (ExamLink). An instructor links it on their first launch, or through Deep Linking;
  a student of a linked exam is enrolled on launch.
- Grades (AGS) and the roster (NRPS) use PyLTI1p3's service connector: a client-credentials token signed with the
  tool's key, for the scopes the launch offered.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final
from urllib.parse import urlsplit

import jwt
import requests
from django.core import signing
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from lti_tool.lti_core.constants import ContextRole
from lti_tool.lti_core.utils import normalize_role
from lti_tool.models import Key, LtiLaunch, LtiRegistration, LtiResourceLink, LtiUser
from lti_tool.utils import sync_data_from_launch
from pylti1p3.assignments_grades import AssignmentsGradesService
from pylti1p3.deep_link import DeepLink
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.exception import LtiException, LtiServiceException
from pylti1p3.grade import Grade
from pylti1p3.names_roles import NamesRolesProvisioningService
from pylti1p3.registration import Registration
from pylti1p3.service_connector import ServiceConnector

from accounts.models import User
from exams import services as exam_services
from exams.lti.launch import AP, LTI
from exams.lti.models import ExamLink, GradeSend, ProctoringHandover
from exams.models import Attempt, Exam
from exams.permissions import user_can_manage_exam

logger = logging.getLogger(__name__)

INSTRUCTOR_ROLES = {ContextRole.INSTRUCTOR, ContextRole.CONTENT_DEVELOPER}
LEARNER_ROLES = {ContextRole.LEARNER}
AGS_SCORE: Final = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
NRPS_READ = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
ACS_SCOPE = "https://purl.imsglobal.org/spec/lti-ap/scope/control.all"
EXAM_TOKEN_SALT = "lti.deep-link.exam"
# The grade passback gives up retrying by itself after this many tries; the exam's LMS page can still resend.
MAX_GRADE_TRIES = 5
# (connect, read) seconds for any call to the LMS.
LMS_TIMEOUT_S = (3.05, 5)


class LtiError(Exception):
    """Something the LMS integration cannot do; `message` is safe to show to the person who asked."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def tool_key_ensure() -> Key:
    """The key this tool signs with (created the first time; `manage.py rotate_keys` makes a new one and retires
    keys older than a week, which the JWKS keeps publishing until then)."""
    key = Key.objects.active().order_by("-datetime_created").first()
    return key or Key.objects.generate()


# --- Who ------------------------------------------------------------------------------------------------------


def launch_roles(launch: LtiLaunch) -> set[str]:
    return {normalize_role(role) for role in launch.roles_claim or []}


def launch_is_instructor(launch: LtiLaunch) -> bool:
    return bool(launch_roles(launch) & INSTRUCTOR_ROLES)


@transaction.atomic
def launch_user_provision(launch: LtiLaunch) -> User:
    """Record the launch's platform, context, membership and resource link (django-lti), and the local account of
    its user: found by (registration, sub), created on the first launch, names and email kept current."""
    sync_data_from_launch(launch)
    lti_user = LtiUser.objects.select_for_update().get(pk=launch.user.pk)
    instructor = launch_is_instructor(launch)
    user: User | None = lti_user.auth_user
    if user is None:
        user = User(
            username=_username_for(lti_user),
            role=User.Role.INSTRUCTOR if instructor else User.Role.STUDENT,
        )
        user.set_unusable_password()
    elif instructor and user.role == User.Role.STUDENT:
        user.role = User.Role.INSTRUCTOR
    user.first_name = (lti_user.given_name or user.first_name)[:150]
    user.last_name = (lti_user.family_name or user.last_name)[:150]
    if not (lti_user.given_name or lti_user.family_name) and lti_user.name:
        first, _, last = lti_user.name.partition(" ")
        user.first_name, user.last_name = first[:150], last[:150]
    user.email = lti_user.email or user.email
    user.save()
    if lti_user.auth_user_id != user.pk:
        lti_user.auth_user = user
        lti_user.save(update_fields=["auth_user"])
    return user


def _username_for(lti_user: LtiUser) -> str:
    """A username no local account has: `lti-<registration>-<hash of sub>`; the LtiUser row, not the name, is the
    identity."""
    digest = hashlib.sha256(f"{lti_user.registration_id}:{lti_user.sub}".encode()).hexdigest()
    base = f"lti-{lti_user.registration_id}-{digest[:12]}"
    name, n = base, 1
    while User.objects.filter(username__iexact=name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


# --- Which exam -----------------------------------------------------------------------------------------------


def exam_link_of(launch: LtiLaunch) -> ExamLink | None:
    """The exam the launch's resource link opens: linked already, or named by a Deep Linking item this tool signed
    (then the link is made now)."""
    resource_link = launch.resource_link
    link = ExamLink.objects.select_related("exam").filter(resource_link=resource_link).first()
    lineitem = (launch.ags_claim or {}).get("lineitem", "")
    if link is None:
        exam = _exam_from_custom(launch)
        if exam is None:
            return None
        link, _ = ExamLink.objects.get_or_create(resource_link=resource_link, defaults={"exam": exam})
    if lineitem and link.lineitem_url != lineitem:
        link.lineitem_url = lineitem
        link.save(update_fields=["lineitem_url"])
    return link


def _exam_from_custom(launch: LtiLaunch) -> Exam | None:
    token = (launch.get_claim(LTI + "custom") or {}).get("exam")
    if not token:
        return None
    try:
        data = signing.loads(token, salt=EXAM_TOKEN_SALT)
    except signing.BadSignature:
        logger.warning("LTI: a custom exam parameter with a bad signature, ignored")
        return None
    if data.get("registration") != launch.registration.pk:
        return None
    return Exam.objects.filter(pk=data.get("exam")).first()


def exams_for_linking(user: User) -> QuerySet[Exam]:
    return (
        Exam.objects.filter(owner=user).order_by("-opens_at", "id")
        if not user.is_platform_admin
        else (Exam.objects.order_by("-opens_at", "id"))
    )


def exam_link_create(*, resource_link: LtiResourceLink, exam: Exam, actor: User, lineitem_url: str = "") -> ExamLink:
    if not user_can_manage_exam(user=actor, exam=exam):
        raise LtiError("You can link only your own exams.")
    link, created = ExamLink.objects.get_or_create(
        resource_link=resource_link, defaults={"exam": exam, "created_by": actor, "lineitem_url": lineitem_url}
    )
    if not created and link.exam_id != exam.pk:
        raise LtiError("This course link already opens another exam.")
    return link


def exam_for_new_link(*, actor: User, title: str) -> Exam:
    """A new, unpublished exam for an LMS link, opening now for two weeks; the instructor edits it next."""
    now = timezone.now()
    return exam_services.exam_create(
        owner=actor,
        title=title.strip() or "New exam",
        opens_at=now,
        closes_at=now + timedelta(days=14),
        duration_minutes=60,
    )


def student_enrol(*, exam: Exam, user: User) -> None:
    if user.role == User.Role.STUDENT:
        exam_services.enrollment_add_many(exam=exam, users=[user])


# --- Deep Linking ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeepLinkReply:
    return_url: str
    jwt: str

    @property
    def origin(self) -> str:
        parts = urlsplit(self.return_url)
        return f"{parts.scheme}://{parts.netloc}"


def deep_link_reply(*, launch: LtiLaunch, exam: Exam, launch_url: str) -> DeepLinkReply:
    """The signed LtiDeepLinkingResponse naming `exam` as an LTI resource link. Its custom parameter is a token this
    tool signed, so a link the LMS creates from it opens that exam and no other."""
    settings = (
        launch.get_message_launch()
        .get_launch_data()
        .get("https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings", {})
    )
    if not settings.get("deep_link_return_url"):
        raise LtiError("The LMS did not say where to send the exam back.")
    token = signing.dumps({"exam": exam.pk, "registration": launch.registration.pk}, salt=EXAM_TOKEN_SALT)
    resource = DeepLinkResource().set_url(launch_url).set_title(exam.title).set_custom_params({"exam": token})
    registration = _registration(launch.registration)
    deep_link = DeepLink(registration, launch.deployment.deployment_id, settings)
    return DeepLinkReply(return_url=settings["deep_link_return_url"], jwt=deep_link.get_response_jwt([resource]))


# --- Roster (NRPS) --------------------------------------------------------------------------------------------


@dataclass
class RosterReport:
    enrolled: int = 0
    students: int = 0
    skipped: int = 0


def roster_sync(*, link: ExamLink) -> RosterReport:
    """Enrol every active Learner of the link's course (Names and Roles Provisioning Services) in its exam,
    provisioning accounts by (registration, sub) as a launch would."""
    context = link.resource_link.context
    if not context.memberships_url:
        raise LtiError("The LMS did not offer its course roster (Names and Roles) with this link.")
    registration = context.deployment.registration
    service = NamesRolesProvisioningService(
        _connector(registration), {"context_memberships_url": context.memberships_url}
    )
    try:
        members = service.get_members()
    except (LtiException, LtiServiceException, OSError) as exc:
        raise LtiError(f"The LMS did not send its roster: {exc}") from exc
    report = RosterReport()
    students = []
    for member in members:
        roles = {normalize_role(role) for role in member.get("roles", [])}
        if member.get("status", "Active") != "Active" or not roles & LEARNER_ROLES or not member.get("user_id"):
            report.skipped += 1
            continue
        students.append(_member_user(registration, member))
    report.students = len(students)
    report.enrolled = len(exam_services.enrollment_add_many(exam=link.exam, users=students).added)
    return report


@transaction.atomic
def _member_user(registration: LtiRegistration, member: Mapping[str, Any]) -> User:
    lti_user, _ = LtiUser.objects.select_for_update().get_or_create(registration=registration, sub=member["user_id"])
    for field, key in (("given_name", "given_name"), ("family_name", "family_name"), ("name", "name"),
                       ("email", "email")):  # fmt: skip
        if member.get(key):
            setattr(lti_user, field, member[key])
    lti_user.save()
    user: User | None = lti_user.auth_user
    if user is None:
        user = User(username=_username_for(lti_user), role=User.Role.STUDENT)
        user.set_unusable_password()
    user.first_name = (lti_user.given_name or user.first_name)[:150]
    user.last_name = (lti_user.family_name or user.last_name)[:150]
    user.email = lti_user.email or user.email
    user.save()
    if lti_user.auth_user_id != user.pk:
        lti_user.auth_user = user
        lti_user.save(update_fields=["auth_user"])
    return user


# --- Grades (AGS) ---------------------------------------------------------------------------------------------


def grade_queue(*, attempt: Attempt) -> GradeSend | None:
    """Note that `attempt`'s score must go to the LMS, when its exam was launched from one with a grade book
    column and its student came from that LMS. None otherwise."""
    if attempt.status == Attempt.Status.IN_PROGRESS or attempt.score is None:
        return None
    link = (
        ExamLink.objects.filter(exam_id=attempt.exam_id)
        .exclude(lineitem_url="")
        .select_related("resource_link__context__deployment__registration")
        .order_by("-created_at")
        .first()
    )
    if link is None:
        return None
    registration = link.resource_link.context.deployment.registration
    lti_user = LtiUser.objects.filter(registration=registration, auth_user_id=attempt.student_id).first()
    if lti_user is None:
        return None
    grade, _ = GradeSend.objects.update_or_create(
        attempt=attempt,
        defaults={
            "link": link,
            "lti_user": lti_user,
            "status": GradeSend.Status.PENDING,
            "score_given": attempt.score,
            "score_maximum": attempt.max_score,
            "fully_graded": attempt.fully_graded,
            "tries": 0,
            "last_error": "",
        },
    )
    return grade


def grade_send(*, grade: GradeSend) -> GradeSend:
    """POST the score to the line item (AGS). A failure is kept on the row with its error, for a retry."""
    link = grade.link
    registration = link.resource_link.context.deployment.registration
    ags = (
        Grade()
        .set_score_given(float(grade.score_given or Decimal("0")))
        .set_score_maximum(float(grade.score_maximum or Decimal("0")))
        .set_timestamp(timezone.now().isoformat())
        .set_activity_progress("Completed")
        .set_grading_progress("FullyGraded" if grade.fully_graded else "PendingManual")
        .set_user_id(grade.lti_user.sub)
    )
    service = AssignmentsGradesService(_connector(registration), {"scope": [AGS_SCORE], "lineitem": link.lineitem_url})
    grade.tries += 1
    try:
        service.put_grade(ags)
    except (LtiException, LtiServiceException, OSError) as exc:
        grade.status = GradeSend.Status.FAILED
        grade.last_error = str(exc)[:2000] or exc.__class__.__name__
        logger.warning("LTI: sending the grade of attempt %s failed (try %s): %s", grade.attempt_id, grade.tries, exc)
    else:
        grade.status = GradeSend.Status.SENT
        grade.last_error = ""
        grade.sent_at = timezone.now()
    grade.save()
    return grade


def grades_retry(*, exam: Exam | None = None, force: bool = False) -> list[GradeSend]:
    """Send every grade still waiting or failed (under MAX_GRADE_TRIES tries, unless `force`)."""
    pending = GradeSend.objects.exclude(status=GradeSend.Status.SENT).select_related(
        "link__resource_link__context__deployment__registration", "lti_user"
    )
    if exam is not None:
        pending = pending.filter(link__exam=exam)
    if not force:
        pending = pending.filter(tries__lt=MAX_GRADE_TRIES)
    return [grade_send(grade=grade) for grade in pending]


# --- LTI Proctoring Services ----------------------------------------------------------------------------------


def handover_start(*, launch: LtiLaunch, link: ExamLink, user: User) -> ProctoringHandover:
    """Record an LtiStartProctoring message: who, which attempt, where to send them when set-up is done."""
    body = launch.get_launch_data()
    acs = body.get(AP + "acs") or {}
    handover, _ = ProctoringHandover.objects.update_or_create(
        link=link,
        lti_user=launch.user,
        attempt_number=str(body[AP + "attempt_number"]),
        defaults={
            "user": user,
            "session_data": str(body.get(AP + "session_data", "")),
            "start_assessment_url": body[AP + "start_assessment_url"],
            "acs_url": acs.get("assessment_control_url", ""),
            "acs_actions": list(acs.get("actions", [])),
            "state": ProctoringHandover.State.SETTING_UP,
        },
    )
    return handover


def start_assessment_reply(*, handover: ProctoringHandover) -> DeepLinkReply:
    """The signed LtiStartAssessment message that hands the candidate back to the platform, echoing its
    session_data and attempt_number, and asking for LtiEndAssessment when the assessment ends."""
    link = handover.link
    deployment = link.resource_link.context.deployment
    registration = _registration(deployment.registration)
    now = int(time.time())
    user = handover.user
    claims = {
        "iss": registration.get_client_id(),
        "aud": registration.get_issuer(),
        "iat": now,
        "exp": now + 600,
        "nonce": secrets.token_urlsafe(24),
        LTI + "message_type": "LtiStartAssessment",
        LTI + "version": "1.3.0",
        LTI + "deployment_id": deployment.deployment_id,
        LTI + "resource_link": {"id": link.resource_link.id_on_platform},
        AP + "session_data": handover.session_data,
        AP + "attempt_number": _attempt_number(handover.attempt_number),
        AP + "end_assessment_return": True,
        # Who this tool saw, as the platform named them; no iss or sub (spec 4.3.2.1).
        AP + "verified_user": {
            k: v for k, v in (("given_name", user.first_name), ("family_name", user.last_name)) if v
        },  # fmt: skip
    }
    private_key = registration.get_tool_private_key()
    assert private_key, "the registration has the tool's key (tool_key_ensure)"
    token = jwt.encode(claims, private_key, algorithm="RS256", headers={"kid": registration.get_kid()})
    handover.state = ProctoringHandover.State.STARTED
    handover.end_assessment_return = True
    handover.save(update_fields=["state", "end_assessment_return", "updated_at"])
    return DeepLinkReply(return_url=handover.start_assessment_url, jwt=token)


def handover_attempt(*, handover: ProctoringHandover) -> Attempt:
    """The attempt whose proctoring covers the LMS's assessment: started (or resumed) when the candidate goes back
    to the LMS, so the webcam stream runs in this tool's window while they answer there. Raises ExamRuleError."""
    attempt = exam_services.attempt_start(exam=handover.link.exam, student=handover.user)
    if handover.attempt_id != attempt.pk:
        handover.attempt = attempt
        handover.save(update_fields=["attempt", "updated_at"])
    return attempt


def _attempt_number(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def handover_end(*, launch: LtiLaunch) -> ProctoringHandover | None:
    """An LtiEndAssessment message: the platform's assessment ended; end the proctoring of that attempt."""
    body = launch.get_launch_data()
    handover = (
        ProctoringHandover.objects.filter(
            lti_user=launch.user,
            link__resource_link__id_on_platform=body[LTI + "resource_link"]["id"],
            attempt_number=str(body[AP + "attempt_number"]),
        )
        .select_related("attempt")
        .first()
    )
    if handover is None:
        return None
    if handover.attempt is not None and handover.attempt.status == Attempt.Status.IN_PROGRESS:
        exam_services.attempt_submit(attempt=handover.attempt)
    handover.state = ProctoringHandover.State.ENDED
    handover.save(update_fields=["state", "updated_at"])
    return handover


ACS_REASONS = {
    "identity_mismatch": "Someone other than the enrolled candidate was on camera.",
    "multiple_faces": "More than one person was on camera.",
    "phone_detected": "A phone was on camera.",
    "face_not_found": "The candidate was not on camera.",
    "looking_away": "The candidate looked away from the screen for a long time.",
}


def acs_flag_send(*, attempt: Attempt, kind: str, at: datetime, confidence: float, note: str) -> bool:
    """Tell the platform's Assessment Control Service that a person confirmed an integrity concern (action "flag"),
    when the attempt came through LTI Proctoring Services and the platform offers the service with that action.
    Never for a flag nobody confirmed. Returns whether it was sent; a failure is logged, not raised."""
    handover = (
        ProctoringHandover.objects.filter(attempt=attempt, acs_url__gt="")
        .select_related("link__resource_link__context__deployment__registration", "lti_user")
        .first()
    )
    if handover is None or "flag" not in handover.acs_actions:
        return False
    registration = handover.link.resource_link.context.deployment.registration
    body = {
        "user": {"iss": registration.issuer, "sub": handover.lti_user.sub},
        "resource_link": {"id": handover.link.resource_link.id_on_platform},
        "attempt_number": _attempt_number(handover.attempt_number),
        "action": "flag",
        "incident_time": at.isoformat(),
        "incident_severity": round(float(confidence or 0.0), 2),
        "reason_code": kind,
        "reason_msg": (ACS_REASONS.get(kind, kind) + (f" Reviewer's note: {note}" if note else ""))[:1000],
    }
    try:
        _connector(registration).make_service_request(
            [ACS_SCOPE],
            handover.acs_url,
            is_post=True,
            data=json.dumps(body),
            content_type="application/vnd.ims.lti-ap.v1.control+json",
        )
    except (LtiException, LtiServiceException, OSError) as exc:
        logger.warning("LTI: the ACS flag for attempt %s was not accepted: %s", attempt.pk, exc)
        return False
    return True


# --- helpers --------------------------------------------------------------------------------------------------


class _TimedSession(requests.Session):
    """Calls to the LMS give up after a few seconds: a grade is sent in the request that graded it, and a slow LMS
    must not hold a student's submit (a failed send is retried by housekeeping)."""

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", LMS_TIMEOUT_S)
        return super().request(*args, **kwargs)


def _connector(registration: LtiRegistration) -> ServiceConnector:
    return ServiceConnector(_registration(registration), requests_session=_TimedSession())


def _registration(registration: LtiRegistration) -> Registration:
    tool_key_ensure()
    converted: Registration = registration.to_registration()
    return converted
