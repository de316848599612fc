"""Review pages: the exam's attempts with their integrity summary and CSV export, the review page of one attempt
(timeline, evidence, decisions), re-scoring with a preview, the live monitor, and the student's view of confirmed
flags with a response.

Instructors reach only their own exams (admins all); anything else is a 404, so ids reveal nothing. Each view parses
input, calls one selector or service, and renders.
"""

from __future__ import annotations

import csv
from datetime import datetime
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods, require_POST

from exams.models import Attempt, Exam
from exams.permissions import user_can_manage_exams
from exams.selectors import student_attempt
from examsite.http import found_or_404
from proctoring import rules
from proctoring.decisions import ReviewError
from proctoring.models import BrowserSignal, FaceTemplate, Flag, StreamEvent
from proctoring.review import timeline
from proctoring.review.selectors import (
    KIND_LABELS,
    PRIORITY_WEIGHTS,
    SORTS,
    STATES,
    attempt_for_review,
    attempt_review_data,
    exam_attempt_summaries,
    exam_flags_for_export,
    exam_for_review,
    exam_rescore_runs,
    exam_roster,
    exams_reviewable_by,
    flag_with_session,
    student_confirmed_flags,
)
from proctoring.review.services.decisions import flag_response_create, flag_review
from proctoring.review.services.rescoring import rescore_apply, rescore_preview, rescore_settings
from proctoring.services.identity import QUEUE_ORDER, enrolment_decide, identity_queue

MARKED_SIGNALS = {
    BrowserSignal.Kind.TAB_HIDDEN,
    BrowserSignal.Kind.FULLSCREEN_EXIT,
    BrowserSignal.Kind.PASTE,
    BrowserSignal.Kind.CAMERA_STOPPED,
}
MARKED_STREAM = {
    StreamEvent.Kind.STALLED,
    StreamEvent.Kind.DISCONNECTED,
    StreamEvent.Kind.RESUMED,
    StreamEvent.Kind.SERVER_ERROR,
}


def _exam_or_404(request: HttpRequest, exam_id: int) -> Exam:
    exam = exam_for_review(user=request.user, exam_id=exam_id)
    if exam is None:
        raise Http404("No such exam in your exams")
    return exam


def _attempt_or_404(request: HttpRequest, attempt_id: int) -> Attempt:
    attempt = attempt_for_review(user=request.user, attempt_id=attempt_id)
    if attempt is None:
        raise Http404("No such attempt in your exams")
    return attempt


@login_required
def exam_index(request: HttpRequest) -> HttpResponse:
    exams = list(exams_reviewable_by(user=request.user).order_by("-opens_at", "id"))
    if not exams and not user_can_manage_exams(user=request.user):
        raise Http404("Review is for instructors")
    return render(request, "review/exam_index.html", {"exams": exams})


@login_required
def exam_attempts(request: HttpRequest, exam_id: int) -> HttpResponse:
    exam = _exam_or_404(request, exam_id)
    sort = request.GET.get("sort", "priority")
    kind = request.GET.get("kind", "")
    state = request.GET.get("state", "")
    query = request.GET.get("q", "").strip()[:100]
    summaries = exam_attempt_summaries(exam=exam, sort=sort, kind=kind, state=state, query=query)
    context = {
        "exam": exam,
        "summaries": summaries,
        "sort": sort if sort in SORTS else "priority",
        "sorts": [(key, label) for key, (_, label) in SORTS.items()],
        "kind": kind,
        "kinds": [(k, KIND_LABELS[k]) for k in rules.CHECKS],
        "state": state,
        "states": list(STATES.items()),
        "query": query,
        # Column headers sort with links that keep the filters.
        "filters": urlencode({k: v for k, v in (("kind", kind), ("state", state), ("q", query)) if v}),
        "runs": list(exam_rescore_runs(exam=exam)[:5]),
    }
    return render(request, "review/exam_attempts.html", context)


def _cell(value: Any) -> Any:
    # Spreadsheets run cells that start with = + - @ as formulas; a student's name or note must never do that.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _local(moment: datetime | None) -> str:
    return timezone.localtime(moment).isoformat() if moment else ""


@login_required
def exam_export(request: HttpRequest, exam_id: int) -> HttpResponse:
    """CSV of the exam's attempts (scores and flag counts) or, with ?what=flags, one row per flag."""
    exam = _exam_or_404(request, exam_id)
    what = request.GET.get("what", "attempts")
    if what not in ("attempts", "flags"):
        return HttpResponse("what must be attempts or flags", status=400, content_type="text/plain")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="exam-{exam.pk}-{what}.csv"'
    response["Cache-Control"] = "private, no-store"
    writer = csv.writer(response)
    # Times in the reader's zone, ISO 8601 with the offset, and the zone named on every row.
    zone = timezone.get_current_timezone_name()
    if what == "attempts":
        writer.writerow(
            [
                "attempt_id",
                "username",
                "name",
                "number",
                "status",
                "started_at",
                "submitted_at",
                "score",
                "max_score",
                *[f"flags_{k}" for k in rules.CHECKS],
                "open",
                "confirmed",
                "dismissed",
                "responses",
                "priority",
                "priority_label",
                "time_zone",
            ]
        )
        for s in exam_attempt_summaries(exam=exam, sort="student"):
            a = s.attempt
            writer.writerow(
                [
                    _cell(v)
                    for v in [
                        a.pk,
                        a.student.username,
                        a.student.get_full_name(),
                        a.number,
                        a.status,
                        _local(a.started_at),
                        _local(a.submitted_at),
                        "" if a.score is None else a.score,
                        a.max_score,
                        *[s.by_kind[k] for k in rules.CHECKS],
                        s.open,
                        s.confirmed,
                        s.dismissed,
                        s.responses,
                        round(s.priority, 2),
                        s.priority_label,
                        zone,
                    ]
                ]
            )
    else:
        writer.writerow(
            [
                "flag_id",
                "attempt_id",
                "username",
                "kind",
                "started_at",
                "ended_at",
                "confidence",
                "threshold",
                "model_version",
                "status",
                "decided_by",
                "note",
                "student_response",
                "time_zone",
            ]
        )
        for flag in exam_flags_for_export(exam=exam):
            human = [d for d in flag.decisions.all() if d.action in ("confirm", "dismiss", "reopen")]
            responses = list(flag.responses.all())
            writer.writerow(
                [
                    _cell(v)
                    for v in [
                        flag.pk,
                        flag.session.attempt_id,
                        flag.session.attempt.student.username,
                        flag.kind,
                        _local(flag.started_at),
                        _local(flag.ended_at),
                        flag.confidence,
                        flag.threshold,
                        flag.model_version,
                        flag.status,
                        human[0].actor.username if human else "",
                        human[0].note if human else "",
                        responses[0].text if responses else "",
                        zone,
                    ]
                ]
            )
    return response


def _timeline_svg(data: Any, attempt: Attempt) -> str:
    if data.start is None:
        return ""
    start, end = data.start.timestamp(), data.end.timestamp()
    spans = [
        timeline.Span(
            id=v.flag.pk,
            kind=v.flag.kind,
            start=v.flag.started_at.timestamp(),
            end=v.flag.ended_at.timestamp() if v.flag.ended_at else None,
            status=v.flag.status,
            href=f"#flag-{v.flag.pk}",
            confidence=v.flag.confidence,
        )
        for v in data.flags
    ]
    marks = [
        timeline.Mark(kind=s.kind, label=s.get_kind_display(), at=s.at.timestamp(), lane="browser")
        for s in data.signals
        if s.kind in MARKED_SIGNALS
    ] + [
        timeline.Mark(kind=e.kind, label=e.get_kind_display(), at=e.at.timestamp(), lane="stream")
        for e in data.stream_events
        if e.kind in MARKED_STREAM
    ]
    counts = ", ".join(
        f"{sum(1 for v in data.flags if v.flag.kind == k)} {KIND_LABELS[k].lower()}" for k in rules.CHECKS
    )
    settings = rules.RuleSettings.from_dict(data.sessions[0].settings_snapshot) if data.sessions else None
    interval = settings.frame_interval_ms / 1000.0 if settings else 2.0
    gaze = timeline.GazeChart(
        points=[(at.timestamp(), value) for at, value in data.gaze],
        limit=settings.gaze_limit if settings else rules.RuleSettings().gaze_limit,
        used=settings.use_gaze if settings else True,
    )
    return timeline.render(
        start=start,
        end=end,
        spans=spans,
        marks=marks,
        attention=[(at.timestamp(), value) for at, value in data.attention],
        title=f"Proctoring timeline of {attempt.student}, attempt {attempt.number}",
        description=(
            f"{timeline.clock(end - start)} of session with {data.frames} analysed frames. Flags: {counts}. "
            f"{len(marks)} browser or connection marks. The tables below the chart hold the same data."
        ),
        frame_interval_s=interval,
        gaze=gaze,
    )


@login_required
def attempt_review(request: HttpRequest, attempt_id: int) -> HttpResponse:
    attempt = _attempt_or_404(request, attempt_id)
    data = attempt_review_data(attempt=attempt)
    start = data.start.timestamp() if data.start else 0.0
    marks = [(s.at, "Browser", s.get_kind_display()) for s in data.signals if s.kind in MARKED_SIGNALS]
    marks += [(e.at, "Connection", e.get_kind_display()) for e in data.stream_events if e.kind in MARKED_STREAM]
    for view in data.flags + data.withdrawn:
        view.offset = timeline.clock(view.flag.started_at.timestamp() - start)
        view.end_offset = timeline.clock(view.flag.ended_at.timestamp() - start) if view.flag.ended_at else None
    context = {
        "attempt": attempt,
        "exam": attempt.exam,
        "data": data,
        "timeline_svg": mark_safe(_timeline_svg(data, attempt)),  # every text inside is escaped by timeline.render
        "attention_rows": timeline.attention_by_minute([(t.timestamp(), v) for t, v in data.attention], start),
        "gaze_rows": timeline.gaze_by_minute([(t.timestamp(), v) for t, v in data.gaze], start),
        "marks": [(timeline.clock(at.timestamp() - start), lane, label) for at, lane, label in sorted(marks)],
    }
    return render(request, "review/attempt.html", context)


@login_required
@require_POST
def flag_decide(request: HttpRequest, flag_id: int) -> HttpResponse:
    decision = request.POST.get("decision", "")
    note = request.POST.get("note", "")
    try:
        flag = flag_review(flag_id=flag_id, actor=request.user, decision=decision, note=note)
    except ReviewError as exc:
        if exc.code in ("not_found", "forbidden"):
            raise Http404(exc.message) from None
        messages.error(request, exc.message)
        flag = found_or_404(flag_with_session(flag_id=flag_id), "No such flag")
    else:
        messages.success(request, f"Flag {flag.pk} ({flag.get_kind_display().lower()}) is now {flag.status}.")
    return redirect(reverse("review:attempt", args=[flag.session.attempt_id]) + f"#flag-{flag.pk}")


class SensitivityForm(forms.Form):
    """The exam's sensitivity, as re-scoring changes it. Cooldowns only pace live guidance; they are saved for the
    next sitting but do not change flags."""

    checks = forms.MultipleChoiceField(
        choices=Flag.Kind.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label="Checks that raise flags",
    )
    k = forms.IntegerField(min_value=1, max_value=60, label="Positive frames needed (k)")
    n = forms.IntegerField(min_value=1, max_value=60, label="Out of the last frames (n)")
    clear_after = forms.IntegerField(min_value=1, max_value=60, label="Clean frames in a row to close a flag")
    cooldown_s = forms.FloatField(min_value=0, max_value=600, label="Cooldown between live messages (seconds)")
    yaw_limit = forms.FloatField(min_value=1, max_value=90, label="Head turn limit, left/right (degrees)")
    pitch_limit = forms.FloatField(min_value=1, max_value=90, label="Head tilt limit, up/down (degrees)")
    gaze_limit = forms.FloatField(min_value=1, max_value=90, label="Gaze limit (degrees)")
    phone_threshold = forms.FloatField(min_value=0.01, max_value=1, label="Phone detector threshold (0.01 to 1)")
    identity_threshold = forms.FloatField(
        min_value=0,
        max_value=1,
        required=False,
        label="Identity similarity threshold (blank: the model's calibrated one)",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("k") and data.get("n") and data["k"] > data["n"]:
            raise forms.ValidationError("k cannot be larger than n: a flag needs k positives among the last n frames.")
        return data

    @classmethod
    def initial_for(cls, exam: Exam) -> dict[str, Any]:
        current = rules.RuleSettings.from_config_or_default(exam.proctoring_settings)
        return {
            "checks": sorted(current.checks),
            **{name: getattr(current, name) for name in cls.base_fields if name != "checks"},
        }

    def config(self, exam: Exam) -> dict[str, Any]:
        """The exam's settings object with this form's values; keys the form does not edit are kept."""
        data = self.cleaned_data
        config = dict(exam.proctoring_settings or {})
        config["checks"] = sorted(data["checks"])
        for name in ("k", "n", "clear_after"):
            config[name] = int(data[name])
        for name in ("cooldown_s", "yaw_limit", "pitch_limit", "gaze_limit", "phone_threshold"):
            config[name] = float(data[name])
        if data.get("identity_threshold") is None:
            config.pop("identity_threshold", None)
        else:
            config["identity_threshold"] = float(data["identity_threshold"])
        return config


@login_required
@require_http_methods(["GET", "POST"])
def exam_rescore(request: HttpRequest, exam_id: int) -> HttpResponse:
    """GET: the current sensitivity. POST action=preview: what would change. POST action=apply: apply it."""
    exam = _exam_or_404(request, exam_id)
    plan = None
    if request.method == "POST":
        form = SensitivityForm(request.POST)
        if form.is_valid():
            config = form.config(exam)
            try:
                rescore_settings(config=config)
                if request.POST.get("action") == "apply":
                    run, plan = rescore_apply(exam_id=exam.pk, actor=request.user, config=config)
                    before, after = sum(plan.before.values()), sum(plan.after.values())
                    messages.success(
                        request,
                        f"New sensitivity applied: {before} flags before, {after} after. "
                        f"{len(plan.conflicts)} reviewed decisions kept where the new settings disagree.",
                    )
                    return redirect("review:exam", exam_id=exam.pk)
                plan = rescore_preview(exam=exam, config=config)
            except ReviewError as exc:
                form.add_error(None, exc.message)
    else:
        form = SensitivityForm(initial=SensitivityForm.initial_for(exam))
    return render(request, "review/rescore.html", {"exam": exam, "form": form, "plan": plan})


@login_required
def exam_monitor(request: HttpRequest, exam_id: int) -> HttpResponse:
    exam = _exam_or_404(request, exam_id)
    return render(
        request,
        "review/monitor.html",
        {"exam": exam, "tiles": exam_roster(exam=exam), "weights": PRIORITY_WEIGHTS},
    )


@login_required
@require_http_methods(["GET", "POST"])
def student_flags(request: HttpRequest, attempt_id: int) -> HttpResponse:
    """A student's own attempt: the confirmed flags, and one response per flag."""
    attempt = student_attempt(student=request.user, attempt_id=attempt_id)
    if attempt is None:
        raise Http404("No such attempt of yours")
    errors: dict[int, str] = {}
    if request.method == "POST":
        try:
            flag_id = int(request.POST.get("flag", ""))
        except ValueError:
            return HttpResponse("flag must be a number", status=400, content_type="text/plain")
        try:
            flag_response_create(flag_id=flag_id, student=request.user, text=request.POST.get("text", ""))
        except ReviewError as exc:
            errors[flag_id] = exc.message
        else:
            messages.success(request, "Thank you. Your response was sent to your instructor.")
            return redirect(reverse("review:my_flags", args=[attempt.pk]) + f"#flag-{flag_id}")
    flags = student_confirmed_flags(student=request.user, attempt=attempt)
    rows = [(flag, response, errors.get(flag.pk)) for flag, response in flags]
    return render(request, "review/student_flags.html", {"attempt": attempt, "rows": rows})


@login_required
@require_http_methods(["GET", "POST"])
def identity_review(request: HttpRequest) -> HttpResponse:
    """Who enrolled (issue 11): each enrolment photo beside the reference photo, with the similarity, for one-click
    approve or reject with a note. Instructors see the students of their exams; admins, everyone."""
    if not user_can_manage_exams(user=request.user):
        raise Http404("Identity review is for instructors")
    status = request.GET.get("status") or None
    if status not in (None, *QUEUE_ORDER):
        status = None
    if request.method == "POST":
        try:
            template = enrolment_decide(
                student_id=int(request.POST.get("student", "0") or 0),
                actor=request.user,
                action=request.POST.get("action", ""),
                note=request.POST.get("note", ""),
            )
        except (ReviewError, ValueError) as exc:
            if getattr(exc, "code", "") == "not_found" or not isinstance(exc, ReviewError):
                raise Http404("No such enrolment among your students") from None
            messages.error(request, exc.message)
        else:
            name = template.user.get_full_name() or template.user.username
            messages.success(request, f"The enrolment of {name} is now {template.get_verification_display().lower()}.")
            anchor = f"#enrolment-{template.user_id}"
            return redirect(
                reverse("review:identity") + (f"?{urlencode({'status': status})}" if status else "") + anchor
            )
    rows = identity_queue(actor=request.user, status=status)
    counts = {value: 0 for value in QUEUE_ORDER}
    for template in identity_queue(actor=request.user) if status else rows:
        counts[template.verification] += 1
    return render(
        request,
        "review/identity.html",
        {
            "rows": rows,
            "status": status,
            "filters": [(value, label, counts[value]) for value, label in FaceTemplate.Verification.choices],
        },
    )
