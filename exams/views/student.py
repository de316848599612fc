"""The role dashboards and the student's side of an exam: detail, start, the exam page, autosave, submit, results.

Views stay thin: find what the person may see (404 for anything else, so ids reveal nothing), call one service,
turn a rule error into a calm message. The instructor's pages live in manage.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from exams import selectors, services
from exams.exceptions import AttemptClosed, DeadlinePassed, ExamRuleError
from exams.hooks import setup_status
from exams.models import Attempt, Exam
from exams.views import manage
from examsite.http import found_or_404


def _expire_overdue(attempts: Iterable[Attempt]) -> int:
    """Lazily expire overdue attempts before showing them, so no page shows a dead attempt as in progress. Returns
    how many there were."""
    count = 0
    for attempt in attempts:
        services.attempt_expire(attempt=attempt)
        count += 1
    return count


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    if user.is_platform_admin:
        exams = selectors.exams_for_manager_list(user=user)
        return render(request, "exams/home_admin.html", {"exams": exams})
    if user.is_instructor:
        exams = selectors.exams_for_manager_list(user=user)
        return render(request, "exams/home_instructor.html", {"exams": exams})
    _expire_overdue(selectors.attempts_overdue_for(student=user))
    dashboard = selectors.student_dashboard(student=user)
    return render(request, "exams/home_student.html", {"dashboard": dashboard})


@login_required
def exam_detail(request: HttpRequest, exam_id: int) -> HttpResponse:
    """The exam's page: the manage page for whoever manages it, the instructions and Start button for a student."""
    user = request.user
    managed = selectors.exam_manageable(user=user, exam_id=exam_id)
    if managed is not None:
        return manage.exam_manage(request, managed)

    exam = found_or_404(selectors.exam_published(exam_id=exam_id), "No such exam")
    enrollment = found_or_404(selectors.enrollment_for(exam=exam, student=user), "No such exam")
    attempts = selectors.student_attempts(exam=exam, student=user)
    if _expire_overdue([a for a in attempts if services.attempt_is_overdue(attempt=a)]):
        attempts = selectors.student_attempts(exam=exam, student=user)
    open_attempt = next((a for a in attempts if a.status == Attempt.Status.IN_PROGRESS), None)
    now = timezone.now()
    is_open = exam.opens_at <= now < exam.closes_at
    context = {
        "exam": exam,
        "enrollment": enrollment,
        "attempts": attempts,
        "open_attempt": open_attempt,
        "is_open": is_open,
        "not_yet_open": now < exam.opens_at,
        "attempts_left": max(exam.max_attempts - len(attempts), 0),
        "minutes_allowed": exam.duration_minutes + enrollment.extra_minutes,
        "question_count": selectors.exam_question_count(exam=exam),
        "setup": _setup_status(exam=exam, student=user),
    }
    return render(request, "exams/exam_detail.html", context)


def _setup_status(*, exam: Exam, student):
    return setup_status(exam=exam, student=student) if exam.proctoring_enabled else None


@login_required
@require_POST
def exam_start(request: HttpRequest, exam_id: int) -> HttpResponse:
    exam = found_or_404(selectors.exam_by_id(exam_id=exam_id), "No such exam")
    missing = selectors.exam_setup_missing(exam=exam, student=request.user)
    if missing is not None:
        return _setup_redirect(request, exam=exam, missing=missing)
    try:
        attempt = services.attempt_start(exam=exam, student=request.user)
    except ExamRuleError as error:
        messages.error(request, error.message)
        if exam.published and selectors.enrollment_for(exam=exam, student=request.user):
            return redirect("exam_detail", exam_id=exam.id)
        return redirect("home")
    return redirect("attempt_page", attempt_id=attempt.id)


SETUP_MESSAGES = {
    "consent": (
        "This exam is proctored. Before you start, please read the proctoring notice and give your answer. "
        "Your exam time has not started."
    ),
    "enrolment": (
        "This exam is proctored. Before you start, please enrol your face: it takes about a minute. "
        "Your exam time has not started."
    ),
    "photo_id": (
        "This exam asks you to show a photo ID, such as your student card, to your camera once before it starts. "
        "Your exam time has not started."
    ),
    "identity": (
        "This exam checks who enrolled before it starts, and that check is not complete yet. "
        "Your exam time has not started."
    ),
}
SETUP_PAGES = {"consent": "proctoring:consent", "enrolment": "proctoring:enrol", "photo_id": "proctoring:enrol_id"}


def _setup_redirect(request: HttpRequest, *, exam: Exam, missing: str) -> HttpResponse:
    """Send the student through the set-up steps they still need, one after the other without a detour: consent,
    then enrolment, then the system check, whose last step is Start. The exam time starts only there."""
    messages.info(request, SETUP_MESSAGES[missing])
    if missing == "identity":
        return redirect("proctoring:identity_exam", exam_id=exam.id)
    after = (
        reverse("proctoring:check_exam", args=[exam.id])
        if exam.proctoring_enabled
        else reverse("exam_detail", args=[exam.id])
    )
    if exam.photo_id_required and missing in ("consent", "enrolment"):
        after = f"{reverse('proctoring:enrol_id')}?{urlencode({'next': after})}"
    if missing == "consent":
        after = f"{reverse('proctoring:enrol')}?{urlencode({'next': after})}"
    return redirect(f"{reverse(SETUP_PAGES[missing])}?{urlencode({'next': after})}")


def _student_attempt(request: HttpRequest, attempt_id: int) -> Attempt:
    return found_or_404(selectors.student_attempt(student=request.user, attempt_id=attempt_id), "No such attempt")


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def attempt_page(request: HttpRequest, attempt_id: int) -> HttpResponse:
    """The exam page. With JavaScript each answer autosaves; without it, this form POST saves every answer."""
    attempt = services.attempt_expire(attempt=_student_attempt(request, attempt_id))
    if attempt.status != Attempt.Status.IN_PROGRESS:
        return redirect("attempt_results", attempt_id=attempt.id)

    if request.method == "POST":
        return _attempt_save_all(request, attempt)

    items = selectors.attempt_questions(attempt=attempt)
    now = timezone.now()
    # The page's countdown runs from the server's deadline and the server's clock (data attributes), so a wrong
    # clock on the student's computer changes nothing; the text is what a reader without JavaScript sees.
    context = {
        "attempt": attempt,
        "exam": attempt.exam,
        "items": items,
        "answered_count": sum(1 for item in items if item.answered),
        "deadline_iso": attempt.deadline.isoformat(timespec="milliseconds"),
        "server_now_iso": now.isoformat(timespec="milliseconds"),
        "remaining_text": _clock(attempt.deadline - now),
        "proctoring": attempt.exam.proctoring_enabled,
    }
    return render(request, "exams/attempt.html", context)


def _clock(remaining: timedelta) -> str:
    seconds = max(int(remaining.total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


def _attempt_save_all(request: HttpRequest, attempt: Attempt) -> HttpResponse:
    questions = selectors.exam_questions(exam_id=attempt.exam_id)
    errors = []
    try:
        for question in questions:
            values = request.POST.getlist(f"q-{question.id}")
            if question.is_choice:
                services.answer_save(attempt=attempt, question=question, choice_ids=values)
            elif values:
                services.answer_save(attempt=attempt, question=question, text=values[0])
    except (AttemptClosed, DeadlinePassed) as error:
        messages.info(request, error.message)
        return redirect("attempt_results", attempt_id=attempt.id)
    except ExamRuleError as error:
        errors.append(error.message)
    if errors:
        for message in errors:
            messages.error(request, message)
    else:
        saved_at = timezone.localtime().strftime("%H:%M:%S")
        messages.success(request, f"Your answers were saved at {saved_at}.")
    if request.POST.get("action") == "review" and not errors:
        return redirect("attempt_submit", attempt_id=attempt.id)
    return redirect("attempt_page", attempt_id=attempt.id)


@login_required
@require_POST
def answer_autosave(request: HttpRequest, attempt_id: int, question_id: int) -> JsonResponse:
    """Save one answer; JSON for the exam page's autosave. 409 tells the page to lock, 400 that the input was
    refused (no point retrying); anything else is worth a retry."""
    attempt = _student_attempt(request, attempt_id)
    question = found_or_404(selectors.exam_question(exam_id=attempt.exam_id, question_id=question_id))
    try:
        answer = services.answer_save(
            attempt=attempt,
            question=question,
            choice_ids=request.POST.getlist("choice"),
            text=request.POST.get("text", ""),
        )
    except (AttemptClosed, DeadlinePassed) as error:
        body = {
            "ok": False,
            "code": error.code,
            "message": error.message,
            "locked": True,
            "results_url": reverse("attempt_results", args=[attempt.id]),
        }
        return JsonResponse(body, status=409)
    except ExamRuleError as error:
        return JsonResponse({"ok": False, "code": error.code, "message": error.message}, status=400)
    return JsonResponse(
        {
            "ok": True,
            "question": question.id,
            "saved_at": answer.saved_at.isoformat(),
            "server_now": timezone.now().isoformat(),
        }
    )


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def attempt_submit(request: HttpRequest, attempt_id: int) -> HttpResponse:
    """GET: the confirmation page (the no-JavaScript path; the exam page uses a dialog). POST: submit."""
    attempt = _student_attempt(request, attempt_id)
    if request.method == "GET":
        attempt = services.attempt_expire(attempt=attempt)
        if attempt.status != Attempt.Status.IN_PROGRESS:
            return redirect("attempt_results", attempt_id=attempt.id)
        items = selectors.attempt_questions(attempt=attempt)
        unanswered = [item for item in items if not item.answered]
        context = {
            "attempt": attempt,
            "exam": attempt.exam,
            "items": items,
            "unanswered": unanswered,
            "answered_count": len(items) - len(unanswered),
        }
        return render(request, "exams/attempt_confirm.html", context)

    attempt = services.attempt_submit(attempt=attempt)
    if attempt.status == Attempt.Status.EXPIRED:
        message = "Time was up, so your answers saved before the deadline have been submitted."
    else:
        message = "Your exam has been submitted."
    results_url = reverse("attempt_results", args=[attempt.id])
    if _wants_json(request):
        return JsonResponse({"ok": True, "status": attempt.status, "message": message, "results_url": results_url})
    messages.success(request, message)
    return redirect(results_url)


@never_cache
@login_required
def attempt_results(request: HttpRequest, attempt_id: int) -> HttpResponse:
    attempt = services.attempt_expire(attempt=_student_attempt(request, attempt_id))
    if attempt.status == Attempt.Status.IN_PROGRESS:
        return redirect("attempt_page", attempt_id=attempt.id)
    items = selectors.attempt_questions(attempt=attempt)
    context = {
        "attempt": attempt,
        "exam": attempt.exam,
        "items": items,
        "pending_count": sum(1 for item in items if item.pending),
        # Proctored if the exam is, or if a session ran (the exam's proctoring may have been switched off since).
        "proctored": attempt.exam.proctoring_enabled or attempt.proctoring_sessions.exists(),
    }
    return render(request, "exams/attempt_results.html", context)
