"""The instructor's pages: exams, questions, enrolment, attempts and grading.

Instructors reach only their own exams (platform admins reach all); any other exam is a 404, so exam ids reveal
nothing. Each view parses a form, calls one service and reports the outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from exams import selectors, services
from exams.exceptions import ExamRuleError
from exams.forms import (
    ChoiceFormSet,
    EnrolForm,
    ExamForm,
    ExtraTimeForm,
    GradeForm,
    NewChoiceFormSet,
    QuestionForm,
    choice_specs,
)
from exams.hooks import exam_form_sections
from exams.models import Attempt, Exam, Question
from exams.permissions import user_can_manage_exams
from examsite.http import found_or_404


def instructor_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not user_can_manage_exams(user=request.user):
            raise PermissionDenied("Only instructors can manage exams.")
        return view(request, *args, **kwargs)

    return wrapper


def _exam(request: HttpRequest, exam_id: int) -> Exam:
    return found_or_404(selectors.exam_manageable(user=request.user, exam_id=exam_id), "No such exam")


def _exam_url(exam: Exam, anchor: str = "") -> str:
    return reverse("exam_detail", args=[exam.id]) + (f"#{anchor}" if anchor else "")


def exam_manage(request: HttpRequest, exam: Exam) -> HttpResponse:
    """The manage page, reached through /exams/<id>/ by whoever manages the exam (see views.exam_detail)."""
    overview = selectors.exam_overview(exam=exam)
    context = {
        "exam": exam,
        "questions": overview.questions,
        "max_score": overview.max_score,
        "locked": overview.locked,
        "enrollments": overview.enrollments,
        "attempts": overview.attempts,
        "needs_grading": overview.needs_grading,
        "proctored": overview.proctored,
        "in_lms": overview.in_lms,
    }
    return render(request, "exams/manage/exam.html", context)


def _all_valid(form: ExamForm, sections: list) -> bool:
    """Every part of the exam form validated (all of them, so that each shows its errors)."""
    return all([form.is_valid(), *[section.is_valid() for section in sections]])


def _exam_kwargs(form: ExamForm, sections: list) -> dict:
    kwargs = form.service_kwargs()
    for section in sections:
        kwargs.update(section.service_kwargs())
    return kwargs


@instructor_required
@require_http_methods(["GET", "POST"])
def exam_create(request: HttpRequest) -> HttpResponse:
    return _exam_form_page(request, exam=None)


@instructor_required
@require_http_methods(["GET", "POST"])
def exam_edit(request: HttpRequest, exam_id: int) -> HttpResponse:
    return _exam_form_page(request, exam=_exam(request, exam_id))


def _exam_form_page(request: HttpRequest, *, exam: Exam | None) -> HttpResponse:
    """The exam form with the sections other apps add (exams.hooks): a new exam, or `exam` edited."""
    form = ExamForm(request.POST or None, initial=ExamForm.initial_for(exam) if exam is not None else None)
    sections = exam_form_sections(request.POST or None, exam=exam)
    if request.method == "POST" and _all_valid(form, sections):
        try:
            if exam is None:
                exam = services.exam_create(owner=request.user, **_exam_kwargs(form, sections))
                messages.success(request, "Exam created. Add its questions, then enrol students and publish it.")
            else:
                services.exam_update(exam=exam, **_exam_kwargs(form, sections))
                messages.success(request, "Exam saved.")
        except ExamRuleError as error:
            form.add_error(None, error.message)
        else:
            return redirect("exam_detail", exam_id=exam.id)
    context = {"form": form, "sections": sections, "exam": exam, "time_zone": timezone.get_current_timezone_name()}
    return render(request, "exams/manage/exam_form.html", context)


@instructor_required
@require_POST
def exam_publish(request: HttpRequest, exam_id: int) -> HttpResponse:
    exam = _exam(request, exam_id)
    publish = request.POST.get("published") == "1"
    try:
        services.exam_publish(exam=exam, published=publish)
    except ExamRuleError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Exam published: enrolled students can see it." if publish else "Exam unpublished.")
    return redirect("exam_detail", exam_id=exam.id)


def _question_page(request: HttpRequest, exam: Exam, question: Question | None) -> HttpResponse:
    """The question form: a new question (`question` None) or one edited; after a save, back to the exam."""
    if question is None:
        initial_choices: list[dict[str, Any]] = []
        initial = None
    else:
        initial = {"kind": question.kind, "text": question.text, "points": question.points}
        initial_choices = [{"id": c.id, "text": c.text, "is_correct": c.is_correct} for c in question.choices.all()]
    form = QuestionForm(request.POST or None, initial=initial)
    formset_class = NewChoiceFormSet if question is None else ChoiceFormSet
    formset = formset_class(request.POST or None, initial=initial_choices, prefix="choices")
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        data = form.cleaned_data
        fields = {
            "kind": data["kind"],
            "text": data["text"],
            "points": data["points"],
            "choices": choice_specs(formset),
        }
        try:
            if question is None:
                question = services.question_create(exam=exam, **fields)
            else:
                services.question_update(question=question, **fields)
        except ExamRuleError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, "Question saved.")
            return redirect(_exam_url(exam, f"question-{question.id}"))
    context = {
        "exam": exam,
        "question": question,
        "form": form,
        "formset": formset,
        "locked": selectors.exam_has_attempts(exam=exam),
    }
    return render(request, "exams/manage/question_form.html", context)


@instructor_required
@require_http_methods(["GET", "POST"])
def question_create(request: HttpRequest, exam_id: int) -> HttpResponse:
    return _question_page(request, _exam(request, exam_id), None)


@instructor_required
@require_http_methods(["GET", "POST"])
def question_edit(request: HttpRequest, exam_id: int, question_id: int) -> HttpResponse:
    exam = _exam(request, exam_id)
    question = found_or_404(selectors.exam_question(exam_id=exam.id, question_id=question_id))
    return _question_page(request, exam, question)


@instructor_required
@require_POST
def question_delete(request: HttpRequest, exam_id: int, question_id: int) -> HttpResponse:
    exam = _exam(request, exam_id)
    question = found_or_404(selectors.exam_question(exam_id=exam.id, question_id=question_id))
    try:
        services.question_delete(question=question)
    except ExamRuleError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Question deleted.")
    return redirect(_exam_url(exam, "questions"))


@instructor_required
@require_POST
def question_move(request: HttpRequest, exam_id: int, question_id: int) -> HttpResponse:
    exam = _exam(request, exam_id)
    question = found_or_404(selectors.exam_question(exam_id=exam.id, question_id=question_id))
    try:
        services.question_move(question=question, direction=request.POST.get("direction", ""))
    except ExamRuleError as error:
        messages.error(request, error.message)
    return redirect(_exam_url(exam, f"question-{question.id}"))


@instructor_required
@require_http_methods(["GET", "POST"])
def exam_students(request: HttpRequest, exam_id: int) -> HttpResponse:
    exam = _exam(request, exam_id)
    candidates = selectors.students_not_enrolled(exam=exam)
    form = EnrolForm(request.POST or None, candidates=candidates)
    if request.method == "POST" and form.is_valid():
        report = services.enrollment_add_many(
            exam=exam, users=form.cleaned_data["students"], identifiers=form.cleaned_data["identifiers"]
        )
        if report.added:
            names = ", ".join(u.username for u in report.added)
            messages.success(request, f"Enrolled {len(report.added)}: {names}.")
        if report.already:
            messages.info(request, "Already enrolled: " + ", ".join(u.username for u in report.already) + ".")
        if report.unknown:
            messages.error(request, "No account found for: " + ", ".join(report.unknown) + ".")
        if report.not_students:
            messages.error(request, "Not students, so not enrolled: " + ", ".join(report.not_students) + ".")
        if report.ambiguous:
            messages.error(
                request, "Several accounts share these emails; use usernames: " + ", ".join(report.ambiguous) + "."
            )
        return redirect("exam_students", exam_id=exam.id)
    context = {"exam": exam, "form": form, "enrollments": selectors.exam_enrollments(exam=exam)}
    return render(request, "exams/manage/students.html", context)


@instructor_required
@require_POST
def enrollment_edit(request: HttpRequest, exam_id: int, enrollment_id: int) -> HttpResponse:
    exam = _exam(request, exam_id)
    enrollment = found_or_404(selectors.exam_enrollment(exam=exam, enrollment_id=enrollment_id))
    if request.POST.get("action") == "remove":
        services.enrollment_remove(enrollment=enrollment)
        messages.success(request, f"{enrollment.student.username} is no longer enrolled.")
        return redirect("exam_students", exam_id=exam.id)
    form = ExtraTimeForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Extra time must be a whole number of minutes between 0 and 1440.")
    else:
        try:
            services.enrollment_update(enrollment=enrollment, extra_minutes=form.cleaned_data["extra_minutes"])
        except ExamRuleError as error:
            messages.error(request, error.message)
        else:
            messages.success(
                request, f"{enrollment.student.username} now has {enrollment.extra_minutes} extra minutes."
            )
    return redirect("exam_students", exam_id=exam.id)


@instructor_required
@require_http_methods(["GET", "POST"])
def attempt_review(request: HttpRequest, exam_id: int, attempt_id: int) -> HttpResponse:
    """One attempt's answers, with a grading form for each short answer."""
    exam = _exam(request, exam_id)
    attempt = found_or_404(selectors.exam_attempt(exam=exam, attempt_id=attempt_id))
    attempt = services.attempt_expire(attempt=attempt)
    if request.method == "POST":
        answer = found_or_404(selectors.attempt_answer(attempt=attempt, answer_id=request.POST.get("answer")))
        form = GradeForm(request.POST, prefix=f"a{answer.id}")
        if form.is_valid():
            try:
                services.answer_grade(
                    answer=answer,
                    grader=request.user,
                    points=form.cleaned_data["points"],
                    feedback=form.cleaned_data["feedback"],
                )
            except ExamRuleError as error:
                messages.error(request, error.message)
            else:
                messages.success(request, "Grade saved.")
        else:
            messages.error(request, f"Points must be a number between 0 and {answer.question.points}.")
        return redirect(reverse("attempt_review", args=[exam.id, attempt.id]) + f"#answer-{answer.id}")

    items = selectors.attempt_questions(attempt=attempt)
    rows = []
    for item in items:
        form = None
        if item.question.kind == Question.Kind.SHORT and item.answer is not None:
            initial = {"points": item.answer.points_awarded, "feedback": item.answer.feedback}
            form = GradeForm(initial=initial, prefix=f"a{item.answer.id}")
        rows.append((item, form))
    context = {
        "exam": exam,
        "attempt": attempt,
        "rows": rows,
        "in_progress": attempt.status == Attempt.Status.IN_PROGRESS,
    }
    return render(request, "exams/manage/attempt_review.html", context)
