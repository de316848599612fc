"""LTI endpoints: login initiation, launch, the tool's key set, linking a course link to an exam, the LMS page of
an exam (roster, grades), the proctoring hand-over, and the page that says what to paste into an LMS.

The login and launch are called by the LMS (cross-site, often in an iframe): no CSRF token, framing allowed. Every
refusal is a calm page with the reason, and creates nothing (exams/lti/launch.py).
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode, urlsplit

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST
from lti_tool.models import LtiRegistration
from pylti1p3.contrib.django import DjangoCacheDataStorage, DjangoOIDCLogin
from pylti1p3.exception import OIDCException

from exams.exceptions import ExamRuleError
from exams.lti import selectors, services
from exams.lti.launch import END_ASSESSMENT, START_PROCTORING, LaunchRefused, StrictToolConfig, launch_restore
from exams.lti.launch import launch_validate as validate
from exams.lti.models import GradeSend, ProctoringHandover
from exams.permissions import user_can_manage_exams, user_is_admin
from exams.selectors import exam_manageable, exam_setup_missing
from examsite.http import found_or_404

logger = logging.getLogger(__name__)
SESSION_LAUNCH = "lti_launch_id"
BACKEND = "django.contrib.auth.backends.ModelBackend"


def _refused(request: HttpRequest, message: str, *, status: int = 400, signed_in: bool = False) -> HttpResponse:
    """A calm page with the reason. `signed_in`: the launch itself was good (the user is signed in), only what it
    asked for cannot be done; otherwise nothing was recorded."""
    return render(request, "lti/refused.html", {"message": message, "signed_in": signed_in}, status=status)


def _with_form_action(response: HttpResponse, url: str) -> HttpResponse:
    """Let this page's form post to the LMS (the Content-Security-Policy allows only this origin otherwise)."""
    parts = urlsplit(url)
    response._csp_update = {"form-action": [f"{parts.scheme}://{parts.netloc}"]}  # type: ignore[attr-defined]
    return response


def jwks(request: HttpRequest) -> JsonResponse:
    """The tool's public keys, for LMSs to check what it signs (deep linking replies, service tokens)."""
    services.tool_key_ensure()
    return JsonResponse(selectors.tool_jwks())


@csrf_exempt
@xframe_options_exempt
@require_http_methods(["GET", "POST"])
def login_init(request: HttpRequest, registration_uuid: str) -> HttpResponse:
    """OIDC third-party initiated login: check the platform is registered, set the state cookie, and send the
    browser to the platform's authorisation URL. Inside an iframe, a small script first checks that cookies can be
    set there, and offers a new window when they cannot."""
    services.tool_key_ensure()
    params = request.POST or request.GET
    target = params.get("target_link_uri", "")
    launch_url = request.build_absolute_uri(reverse("lti:launch"))
    if urlsplit(target)[:3] != urlsplit(launch_url)[:3]:
        return _refused(request, "This sign-in was not meant for this exam platform, so it was refused.")
    oidc = DjangoOIDCLogin(request, StrictToolConfig(registration_uuid), launch_data_storage=DjangoCacheDataStorage())
    try:
        redirect_obj = oidc.get_redirect_object(launch_url)
    except (OIDCException, LtiRegistration.DoesNotExist, ValueError) as exc:
        logger.info("LTI login refused: %s", exc)
        return _refused(request, "This course's LMS is not registered with this exam platform, so it was refused.")
    new_window = f"{request.path}?{urlencode({**params.dict(), 'lti1p3_new_window': '1'})}"
    response = render(
        request,
        "lti/login.html",
        {"redirect_url": redirect_obj.get_redirect_url(), "new_window": new_window},
    )
    return redirect_obj._process_response(response)


@csrf_exempt
@xframe_options_exempt
@require_POST
def launch(request: HttpRequest) -> HttpResponse:
    """A launch from the LMS: validate everything, provision the user, sign them in, and route by message type."""
    services.tool_key_ensure()
    try:
        message = validate(request)
    except LaunchRefused as refusal:
        logger.info("LTI launch refused: %s", refusal.__cause__ or refusal)
        return _refused(request, refusal.message, status=403)
    if not message.deployment.is_active:
        return _refused(request, "This course's connection to the exam platform is switched off.", status=403)
    user = services.launch_user_provision(message)
    login(request, user, backend=BACKEND)
    request.session[SESSION_LAUNCH] = message.get_launch_id()
    kind = message.get_claim("https://purl.imsglobal.org/spec/lti/claim/message_type")
    if message.is_deep_link_launch:
        if not user_can_manage_exams(user=user):
            return _refused(request, "Only instructors can choose an exam for the course.", status=403, signed_in=True)
        return redirect("lti:link")
    link = services.exam_link_of(message)
    if kind == END_ASSESSMENT:
        handover = services.handover_end(launch=message)
        return render(request, "lti/ended.html", {"handover": handover})
    if link is None:
        if services.launch_is_instructor(message):
            return redirect("lti:link")
        return _refused(
            request,
            "This exam has not been set up yet. Please ask your instructor to open it once from the course.",
            status=404,
            signed_in=True,
        )
    if kind == START_PROCTORING:
        handover = services.handover_start(launch=message, link=link, user=user)
        services.student_enrol(exam=link.exam, user=user)
        return redirect("lti:handover", handover_id=handover.pk)
    if user.is_instructor and link.exam.owner_id != user.pk:
        # Exams have one owner: another instructor of the course sees whose it is, rather than a 404.
        owner = link.exam.owner.get_full_name() or link.exam.owner.username
        return _refused(
            request,
            f"This course link opens “{link.exam.title}”, which {owner} manages. Ask them for what you need, or "
            "add the tool to the course again and link your own exam.",
            status=403,
            signed_in=True,
        )
    services.student_enrol(exam=link.exam, user=user)
    return redirect("exam_detail", exam_id=link.exam_id)


def _session_launch(request: HttpRequest):
    launch_id = request.session.get(SESSION_LAUNCH)
    message = launch_restore(request, launch_id) if launch_id else None
    if message is None:
        raise PermissionDenied("No LMS launch in this session")
    return message


@login_required
@require_http_methods(["GET", "POST"])
def link(request: HttpRequest) -> HttpResponse:
    """An instructor chooses (or creates) the exam this course link opens: for a first launch of a link, or for a
    Deep Linking request, whose answer goes back to the LMS."""
    try:
        message = _session_launch(request)
    except PermissionDenied:
        return _refused(request, "This page needs a launch from your course. Please open it again from there.")
    user = request.user
    if not user_can_manage_exams(user=user):
        raise PermissionDenied
    deep_link = message.is_deep_link_launch
    error = ""
    if request.method == "POST":
        try:
            if request.POST.get("action") == "create":
                exam = services.exam_for_new_link(actor=user, title=request.POST.get("title", ""))
            else:
                exam = get_object_or_404(services.exams_for_linking(user), pk=request.POST.get("exam"))
            if deep_link:
                reply = services.deep_link_reply(
                    launch=message, exam=exam, launch_url=request.build_absolute_uri(reverse("lti:launch"))
                )
                response = render(request, "lti/post_to_lms.html", {"reply": reply, "exam": exam, "why": "link"})
                return _with_form_action(response, reply.return_url)
            services.exam_link_create(
                resource_link=message.resource_link,
                exam=exam,
                actor=user,
                lineitem_url=(message.ags_claim or {}).get("lineitem", ""),
            )
        except services.LtiError as exc:
            error = exc.message
        else:
            messages.success(request, f"This course link now opens “{exam.title}”.")
            return redirect("exam_detail", exam_id=exam.pk)
    context_title = (message.context_claim or {}).get("title", "")
    return render(
        request,
        "lti/link.html",
        {
            "exams": services.exams_for_linking(user),
            "deep_link": deep_link,
            "context_title": context_title,
            "link_title": (message.resource_link_claim or {}).get("title", "") if not deep_link else "",
            "error": error,
        },
    )


@login_required
def exam_lms(request: HttpRequest, exam_id: int) -> HttpResponse:
    """An exam's LMS page for its owner: its course links, the roster sync, and every grade sent or failing."""
    # Its owner's and the admins' only; anyone else gets a 404, as for any exam they cannot manage.
    exam = found_or_404(exam_manageable(user=request.user, exam_id=exam_id), "No such exam")
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "roster":
            link_obj = found_or_404(selectors.exam_link(exam=exam, link_id=request.POST.get("link")))
            try:
                report = services.roster_sync(link=link_obj)
            except services.LtiError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(
                    request,
                    f"Roster read from the LMS: {report.students} students, {report.enrolled} newly enrolled.",
                )
        elif action == "grades":
            sent = services.grades_retry(exam=exam, force=True)
            failed = sum(1 for g in sent if g.status == GradeSend.Status.FAILED)
            messages.info(request, f"Sent {len(sent) - failed} grade(s); {failed} failed.")
        return redirect("lti:exam", exam_id=exam.pk)
    links = selectors.exam_links(exam=exam)
    return render(request, "lti/exam.html", {"exam": exam, "links": links, "grades": selectors.exam_grades(exam=exam)})


@login_required
def handover(request: HttpRequest, handover_id: int) -> HttpResponse:
    """LTI Proctoring Services: the set-up this exam needs (consent, enrolment, identity, the system check), then
    the way back to the LMS's assessment with a signed LtiStartAssessment."""
    item = found_or_404(selectors.handover_of(user=request.user, handover_id=handover_id), "No such hand-over")
    exam = item.link.exam
    missing = exam_setup_missing(exam=exam, student=request.user)
    here = request.path
    if missing is not None:
        steps = {
            "consent": reverse("proctoring:consent"),
            "enrolment": reverse("proctoring:enrol"),
            "photo_id": reverse("proctoring:enrol_id"),
            "identity": reverse("proctoring:identity_exam", args=[exam.pk]),
        }
        return render(
            request,
            "lti/handover.html",
            {
                "item": item,
                "exam": exam,
                "missing": missing,
                "next_url": f"{steps[missing]}?{urlencode({'next': here})}",
            },
        )
    if item.state == ProctoringHandover.State.ENDED:
        return render(request, "lti/ended.html", {"handover": item})
    if exam.proctoring_enabled and item.state == ProctoringHandover.State.SETTING_UP and "checked" not in request.GET:
        # The system check last: camera, light, framing and connection, nothing recorded; it leads back here.
        next_url = reverse("proctoring:check_exam", args=[exam.pk]) + "?" + urlencode({"next": f"{here}?checked=1"})
        return render(
            request, "lti/handover.html", {"item": item, "exam": exam, "missing": "check", "next_url": next_url}
        )
    try:
        attempt = services.handover_attempt(handover=item)
    except ExamRuleError as error:
        return _refused(request, error.message, status=409, signed_in=True)
    reply = services.start_assessment_reply(handover=item)
    response = render(
        request, "lti/post_to_lms.html", {"reply": reply, "exam": exam, "why": "start", "attempt": attempt}
    )
    return _with_form_action(response, reply.return_url)


@login_required
def setup(request: HttpRequest) -> HttpResponse:
    """For admins: what to paste into Moodle, Canvas or Open edX for each registered platform."""
    if not user_is_admin(user=request.user):
        raise PermissionDenied
    services.tool_key_ensure()
    base = request.build_absolute_uri("/").rstrip("/")
    registrations = [
        {
            "registration": registration,
            "login_url": base + reverse("lti:login", args=[registration.uuid]),
            "deployments": deployments,
        }
        for registration, deployments in selectors.registrations()
    ]
    return render(
        request,
        "lti/setup.html",
        {
            "registrations": registrations,
            "launch_url": base + reverse("lti:launch"),
            "jwks_url": base + reverse("lti:jwks"),
            "base": base,
            "secure": request.is_secure(),
        },
    )
