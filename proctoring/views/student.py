"""The student's side of proctoring: consent, face enrolment and the pre-exam system check.

The views stay thin: parse the request, call one service, answer. The JSON endpoints always answer JSON, also when
the student is signed out or sent a bad image, because the page's script shows the message to the student and a
login redirect or an HTML error page would reach it as gibberish.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from exams.models import Attempt
from exams.selectors import exam_for_student, student_attempt
from examsite.http import found_or_404
from proctoring.forms import ConsentForm
from proctoring.models import CONSENT_NOTICE_VERSION
from proctoring.ratelimit import rate_allow
from proctoring.selectors import (
    consent_current,
    consent_given,
    enrolment_is_current,
    face_template_of,
    proctoring_setup_status,
)
from proctoring.services.consent import consent_record, consent_retention_days
from proctoring.services.enrolment import enrolment_check_frame, face_enrol
from proctoring.services.identity import photo_id_record
from proctoring.vision.errors import ModelPackError
from proctoring.vision.frames import FrameError, decode_frame

logger = logging.getLogger(__name__)
T = TypeVar("T")

# The page asks for this many accepted photos; face_enrol needs at least ENROL_MIN_FRAMES of them. Five frames
# average out blinks and small head turns in the stored embedding and the neutral pose, and take about ten seconds.
ENROL_TARGET_FRAMES = 5
ENROL_MIN_FRAMES = 3
# More than this in one finish request is not a student at a webcam.
ENROL_MAX_FRAMES = 10

UNAVAILABLE_MESSAGE = "The face check is not available right now. Please try again later or tell your instructor."
# The enrolment page sends one photo every 0.6 s at most and the system check one every 0.7 s; these limits leave
# room for both at once and refuse a script that posts in a loop (the checks run models in the web process).
CHECK_LIMIT, CHECK_WINDOW_S = 40, 20
FINISH_LIMIT, FINISH_WINDOW_S = 10, 60
SLOW_DOWN_MESSAGE = "That was a lot of photos at once. Please wait a few seconds; we will carry on."
# The system check's connection test: a socket that records nothing (proctoring/check_socket.py).
CHECK_SOCKET = "/ws/check/"


def _safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        return target
    return default


def leads_to_exam_start(url: str, *, depth: int = 3) -> bool:
    """Whether a set-up page's next step leads, directly or through further set-up pages, to the check before an
    exam starts or to the exam's own page: then the student is told on every set-up page that their exam time has
    not started (issue 12)."""
    for _ in range(depth):
        parts = urlsplit(url)
        if parts.path.startswith("/proctoring/check/exam/") or re.fullmatch(r"/exams/\d+/", parts.path):
            return True
        url = parse_qs(parts.query).get("next", [""])[0]
        if not url:
            return False
    return False


def _with_next(url: str, next_url: str | None) -> str:
    return f"{url}?{urlencode({'next': next_url})}" if next_url else url


def _json_error(status: int, reason: str, message: str) -> JsonResponse:
    return JsonResponse({"ok": False, "reason": reason, "message": message}, status=status)


def json_login_and_consent_required(view):
    """For the enrolment endpoints: 401 when signed out, 403 without consent, both as JSON."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            return _json_error(401, "not_signed_in", "You are signed out. Please sign in again and reload this page.")
        if not consent_given(user=request.user):
            return _json_error(
                403, "no_consent", "Please read and accept the proctoring notice before enrolling your face."
            )
        return view(request, *args, **kwargs)

    return wrapper


@login_required
@require_http_methods(["GET", "POST"])
def consent(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request, reverse("proctoring:enrol"))
    declined = False
    if request.method == "POST":
        form = ConsentForm(request.POST)
        if form.is_valid():
            accepted = form.cleaned_data["decision"] == ConsentForm.ACCEPT
            consent_record(user=request.user, accepted=accepted)
            if accepted:
                return redirect(next_url)
            declined = True
    else:
        form = ConsentForm()
    return render(
        request,
        "proctoring/consent.html",
        {
            "form": form,
            "declined": declined,
            "current": consent_current(user=request.user),
            "notice_version": CONSENT_NOTICE_VERSION,
            "retention_days": consent_retention_days(),
            "next": next_url,
            "before_exam": leads_to_exam_start(next_url),
        },
    )


def _enrolment_current(user) -> bool:
    """Enrolled with the embedding model the server uses now. An enrolment from another model cannot be compared
    (the WebSocket refuses it with 4412), so the student is sent to re-enrol before the exam rather than during it."""
    try:
        return enrolment_is_current(user=user)
    except ModelPackError:
        # The pack itself is broken: re-enrolling cannot help. Let the page load; the checks report the failure.
        logger.exception("Cannot tell which embedding model is current")
        return face_template_of(user=user) is not None


@login_required
def enrol(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request, "")
    if not consent_given(user=request.user):
        return redirect(_with_next(reverse("proctoring:consent"), request.get_full_path()))
    template = face_template_of(user=request.user, fields=("updated_at", "frames_used"))
    return render(
        request,
        "proctoring/enrol.html",
        {
            "template": template,
            "outdated": template is not None and not _enrolment_current(request.user),
            "target_frames": ENROL_TARGET_FRAMES,
            "min_frames": ENROL_MIN_FRAMES,
            "next": next_url,
            "before_exam": leads_to_exam_start(next_url),
        },
    )


@login_required
def enrol_id(request: HttpRequest) -> HttpResponse:
    """The photo ID step (issue 11): the student holds their ID up beside their face, once per enrolment."""
    next_url = _safe_next(request, "")
    if not consent_given(user=request.user):
        return redirect(_with_next(reverse("proctoring:consent"), request.get_full_path()))
    if not _enrolment_current(request.user):
        return redirect(_with_next(reverse("proctoring:enrol"), request.get_full_path()))
    template = face_template_of(user=request.user, fields=("id_captured_at",))
    return render(
        request,
        "proctoring/enrol_id.html",
        {"template": template, "next": next_url, "before_exam": leads_to_exam_start(next_url)},
    )


@require_POST
@json_login_and_consent_required
def enrol_id_frame(request: HttpRequest) -> JsonResponse:
    """Check one webcam photo of the student holding their ID; keep it when it is usable."""
    checked = _checked_upload(request, lambda image: photo_id_record(user=request.user, image=image), what="Photo ID")
    if isinstance(checked, JsonResponse):
        return checked
    _, check = checked
    if not check.ok:
        return _json_error(422, check.reason, check.message)
    template = face_template_of(user=request.user, fields=("id_captured_at",))
    captured = template.id_captured_at.isoformat() if template and template.id_captured_at else None
    return JsonResponse({"ok": True, "reason": check.reason, "message": check.message, "captured_at": captured})


def _checked_upload(request: HttpRequest, check: Callable[[Any], T], *, what: str) -> tuple[Any, T] | JsonResponse:
    """The front shared by the photo endpoints: the rate limit, the upload decoded, `check` run on the image; a JSON
    error for each way that fails (429, 400, 503 when the model pack is unusable)."""
    if not rate_allow(key=f"enrol-check:{request.user.pk}", limit=CHECK_LIMIT, window_s=CHECK_WINDOW_S):
        return _json_error(429, "rate_limited", SLOW_DOWN_MESSAGE)
    try:
        image = _decode_upload(request.FILES.get("frame"))
    except FrameError as exc:
        return _json_error(400, exc.reason, exc.message)
    try:
        return image, check(image)
    except ModelPackError:
        logger.exception("%s check unavailable: model pack", what)
        return _json_error(503, "unavailable", UNAVAILABLE_MESSAGE)


def _decode_upload(upload):
    """Decode one uploaded file into a BGR image, or raise FrameError with a calm message."""
    if upload is None:
        raise FrameError("empty", "No photo arrived. Please try again.")
    return decode_frame(upload.read())


@require_POST
@json_login_and_consent_required
def enrol_frame(request: HttpRequest) -> JsonResponse:
    """Check one webcam photo for enrolment and say, calmly, what to change when it is not usable."""
    checked = _checked_upload(request, lambda image: enrolment_check_frame(image=image), what="Enrolment")
    if isinstance(checked, JsonResponse):
        return checked
    image, check = checked
    return JsonResponse(
        {
            "ok": bool(check.ok),
            "reason": check.reason,
            "message": check.message,
            "face_box": [round(float(v), 1) for v in check.face_box] if check.face_box is not None else None,
            "brightness": check.brightness,
            "width": int(image.shape[1]),
            "height": int(image.shape[0]),
        }
    )


@require_POST
@json_login_and_consent_required
def enrol_finish(request: HttpRequest) -> JsonResponse:
    """Enrol (or re-enrol) the student's face from the photos the page kept.

    The page sends back the photos the check endpoint accepted, rather than the server keeping them between
    requests. That keeps the server stateless: it works the same behind several ASGI processes, leaves no half-done
    enrolment in a cache or session to expire, and face_enrol checks every photo again, so a page that sends
    something else gains nothing. The cost is one re-upload of about 5 x 40 KB.
    """
    if not rate_allow(key=f"enrol-finish:{request.user.pk}", limit=FINISH_LIMIT, window_s=FINISH_WINDOW_S):
        return _json_error(429, "rate_limited", SLOW_DOWN_MESSAGE)

    uploads = request.FILES.getlist("frames")
    if not uploads:
        return _json_error(400, "empty", "No photos arrived. Please take your photos again.")
    if len(uploads) > ENROL_MAX_FRAMES:
        return _json_error(400, "too_many", f"Please send at most {ENROL_MAX_FRAMES} photos.")
    images = []
    for index, upload in enumerate(uploads, start=1):
        try:
            images.append(_decode_upload(upload))
        except FrameError as exc:
            return _json_error(400, exc.reason, f"Photo {index}: {exc.message}")

    try:
        result = face_enrol(user=request.user, images=images, min_frames=ENROL_MIN_FRAMES)
    except ModelPackError:
        logger.exception("Face enrolment unavailable: model pack")
        return _json_error(503, "unavailable", UNAVAILABLE_MESSAGE)
    rejections = [
        {"index": index, "reason": reason, "message": message} for index, reason, message in result.rejections
    ]
    if result.template is None:
        return JsonResponse(
            {
                "ok": False,
                "reason": "not_enough_frames",
                "message": (
                    f"Only {result.accepted} of your photos could be used; we need at least {ENROL_MIN_FRAMES}. "
                    "Please take your photos again."
                ),
                "accepted": result.accepted,
                "rejections": rejections,
            },
            status=422,
        )
    return JsonResponse(
        {
            "ok": True,
            "message": "Your face is enrolled. Thank you.",
            "accepted": result.accepted,
            "rejections": rejections,
            "enrolled_at": result.template.updated_at.isoformat(),
        }
    )


def _setup_missing_redirect(request: HttpRequest) -> HttpResponse | None:
    """Before the system check: consent, then enrolment, each coming back here; None when both are done."""
    here = request.get_full_path()
    if not consent_given(user=request.user):
        return redirect(_with_next(reverse("proctoring:consent"), _with_next(reverse("proctoring:enrol"), here)))
    if not _enrolment_current(request.user):
        return redirect(_with_next(reverse("proctoring:enrol"), here))
    return None


@login_required
def system_check_exam(request: HttpRequest, exam_id: int) -> HttpResponse:
    """The system check before the exam clock starts, from the exam's page: the same checks, nothing recorded, and
    Start at the end. Only for a student enrolled in the exam (anyone else gets a 404, as for an attempt)."""
    exam = found_or_404(exam_for_student(student=request.user, exam_id=exam_id), "No such exam")
    if exam.proctoring_enabled and (setup := _setup_missing_redirect(request)) is not None:
        return setup
    return render(
        request,
        "proctoring/check.html",
        {
            "attempt": None,
            "exam": exam,
            "exam_url": reverse("exam_detail", args=[exam.pk]),
            "ws_path": CHECK_SOCKET,
            # Where the check leads instead of Start, when another step follows it (an LMS's proctoring hand-over).
            "continue_url": _safe_next(request, ""),
        },
    )


@login_required
def system_check(request: HttpRequest, attempt_id: int) -> HttpResponse:
    """The pre-exam check: camera, lighting, framing and connection, each with a plain pass or fail."""
    # Someone else's attempt is a 404, not a 403: it does not confirm that the attempt exists.
    attempt = found_or_404(student_attempt(student=request.user, attempt_id=attempt_id), "No such attempt")
    exam_url = f"/attempts/{attempt.pk}/"
    if (
        attempt.exam.proctoring_enabled
        and attempt.status == Attempt.Status.IN_PROGRESS
        and (setup := _setup_missing_redirect(request)) is not None
    ):
        return setup
    return render(
        request,
        "proctoring/check.html",
        {"attempt": attempt, "exam": attempt.exam, "exam_url": exam_url, "ws_path": CHECK_SOCKET},
    )


IDENTITY_EXPLAINED = {
    # (what the exam requires, what is known of the enrolment) -> what the student reads; the first match wins.
    ("matched", "unverified"): (
        "This exam checks your face enrolment against a reference photo of you, such as your student card photo, "
        "and there is no reference photo on file for you yet. Please tell your instructor: they can add one, or "
        "look at your enrolment and approve it themselves."
    ),
    ("matched", "mismatch"): (
        "Your enrolment did not match the reference photo on file or your photo ID closely enough for the automatic "
        "check. This "
        "is not a decision about you: a person will compare the photos, and you can start as soon as they approve. "
        "If the light was poor or your appearance has changed, enrolling again in good light may also help."
    ),
    ("approved", None): (
        "This exam asks for a person to confirm your face enrolment before it starts, and they have not done so "
        "yet. You do not need to do anything else: you can start as soon as they approve."
    ),
    (None, "rejected"): (
        "A person compared your enrolment with your reference or ID photo and could not confirm it is you. Please "
        "enrol again in good light, facing the camera, or talk to your instructor."
    ),
}


def identity_explained(*, required: str, verification: str | None) -> str:
    for (need, state), text in IDENTITY_EXPLAINED.items():
        if need in (None, required) and state in (None, verification):
            return text
    return "Your enrolment has not been confirmed yet. Please talk to your instructor."


@login_required
def identity_exam(request: HttpRequest, exam_id: int) -> HttpResponse:
    """What the exam's identity check still needs from this student, calmly, before the clock starts."""
    exam = found_or_404(exam_for_student(student=request.user, exam_id=exam_id), "No such exam")
    setup = proctoring_setup_status(user=request.user, exam=exam)
    if setup.missing in ("consent", "enrolment"):
        return redirect("exam_detail", exam_id=exam.pk)
    template = face_template_of(user=request.user, fields=("verification_note", "verification"))
    return render(
        request,
        "proctoring/identity.html",
        {
            "exam": exam,
            "setup": setup,
            "explained": identity_explained(required=setup.identity_required, verification=setup.verification),
            "note": template.verification_note if template and setup.verification == "rejected" else "",
        },
    )
