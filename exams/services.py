"""Writes for exams: the rules of sitting, grading and authoring an exam.

Every function takes keyword-only arguments and raises a subclass of `exams.exceptions.ExamRuleError` with a calm
message when a rule says no. Views parse input, call one of these, and turn the error into a message.

Functions that depend on the clock take an optional `now`, so that tests can state the moment instead of sleeping.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.formats import date_format

from accounts.models import User

from .exceptions import (
    AttemptClosed,
    DeadlinePassed,
    ExamClosed,
    ExamLocked,
    ExamNotOpen,
    ExamNotPublished,
    InvalidAnswer,
    InvalidExam,
    InvalidGrade,
    NoAttemptsLeft,
    NotAllowed,
    NotEnrolled,
)
from .models import DEADLINE_GRACE, Answer, Attempt, Choice, Enrollment, Exam, Question
from .permissions import user_can_manage_exam, user_can_manage_exams
from .signals import attempt_closed, attempt_graded, attempt_started

# Long enough for a paragraph-style short answer; bounded so that one request can't store megabytes.
MAX_ANSWER_CHARS = 10_000


def _now(now: datetime | None) -> datetime:
    return now if now is not None else timezone.now()


def _when(moment: datetime) -> str:
    return date_format(timezone.localtime(moment), "DATETIME_FORMAT")


# --------------------------------------------------------------------------------------------------------------
# Sitting an exam
# --------------------------------------------------------------------------------------------------------------


def attempt_deadline(*, exam: Exam, enrollment: Enrollment, started_at: datetime) -> datetime:
    """The server's deadline: the duration plus any extra time, but never past the exam's closing time."""
    allowed = timedelta(minutes=exam.duration_minutes + enrollment.extra_minutes)
    return min(started_at + allowed, exam.closes_at)


def attempt_is_overdue(*, attempt: Attempt, now: datetime | None = None) -> bool:
    return attempt.status == Attempt.Status.IN_PROGRESS and not attempt.is_live(_now(now))


def attempt_start(*, exam: Exam, student: User, now: datetime | None = None) -> Attempt:
    """Start an attempt, or resume the student's open one.

    1. The exam must be published and its window open.
    2. The student must be enrolled.
    3. An open attempt that still has time is resumed, never duplicated; an overdue one is expired first.
    4. A new attempt needs an attempt left (exam.max_attempts).
    """
    now = _now(now)
    if not exam.published:
        raise ExamNotPublished()
    if now < exam.opens_at:
        raise ExamNotOpen(f"This exam opens on {_when(exam.opens_at)}.")
    if now >= exam.closes_at:
        raise ExamClosed(f"This exam closed on {_when(exam.closes_at)}.")

    # An overdue open attempt is closed first, in its own transaction, so that the expiry stands even when the
    # start is then refused (no attempt left).
    for overdue in Attempt.objects.filter(exam=exam, student=student, status=Attempt.Status.IN_PROGRESS):
        attempt_expire(attempt=overdue, now=now)

    with transaction.atomic():
        # Locking the enrolment row serialises two Start clicks (two tabs) on PostgreSQL. SQLite serialises
        # writers anyway; the one-open-attempt constraint below is the last line of defence on both.
        enrollment = Enrollment.objects.select_for_update().filter(exam=exam, student=student).first()
        if enrollment is None:
            raise NotEnrolled()

        open_attempt = Attempt.objects.filter(exam=exam, student=student, status=Attempt.Status.IN_PROGRESS).first()
        if open_attempt is not None:
            return open_attempt

        used = Attempt.objects.filter(exam=exam, student=student).count()
        if used >= exam.max_attempts:
            raise NoAttemptsLeft()

        try:
            with transaction.atomic():
                attempt = Attempt.objects.create(
                    exam=exam,
                    student=student,
                    number=used + 1,
                    status=Attempt.Status.IN_PROGRESS,
                    started_at=now,
                    deadline=attempt_deadline(exam=exam, enrollment=enrollment, started_at=now),
                    max_score=_exam_max_score(exam),
                )
            transaction.on_commit(lambda: attempt_started.send_robust(sender=Attempt, attempt=attempt), robust=True)
            return attempt
        except IntegrityError:
            # Another request created the attempt between our read and our insert: resume that one.
            existing = Attempt.objects.filter(exam=exam, student=student, status=Attempt.Status.IN_PROGRESS).first()
            if existing is None:
                raise
            return existing


def answer_save(
    *,
    attempt: Attempt,
    question: Question,
    choice_ids: Iterable[int | str] = (),
    text: str = "",
    now: datetime | None = None,
) -> Answer:
    """Save (replace) the answer to one question of an attempt in progress.

    Refused when the attempt is no longer in progress or its deadline has passed (the attempt is then expired, so
    the student's earlier answers count). A choice must belong to the question; a single-choice question takes at
    most one.
    """
    now = _now(now)
    if question.exam_id != attempt.exam_id:
        raise InvalidAnswer("That question isn't part of this exam.")

    selected: list[Choice] = []
    if question.is_choice:
        try:
            wanted = {int(choice_id) for choice_id in choice_ids}
        except (TypeError, ValueError):
            raise InvalidAnswer("That choice isn't one of this question's choices.") from None
        selected = list(question.choices.filter(id__in=wanted))
        if len(selected) != len(wanted):
            raise InvalidAnswer("That choice isn't one of this question's choices.")
        if question.kind == Question.Kind.SINGLE and len(selected) > 1:
            raise InvalidAnswer("This question takes one answer only.")
        text = ""
    else:
        if any(True for _ in choice_ids):
            raise InvalidAnswer("This question takes a written answer, not a choice.")
        text = (text or "").replace("\r\n", "\n")
        if len(text) > MAX_ANSWER_CHARS:
            raise InvalidAnswer(f"Answers can be at most {MAX_ANSWER_CHARS:,} characters long.")

    with transaction.atomic():
        # Lock the attempt so that a save can't slip in while a submit is grading it.
        locked = Attempt.objects.select_for_update().get(pk=attempt.pk)
        if locked.status != Attempt.Status.IN_PROGRESS:
            raise AttemptClosed()
        overdue = attempt_is_overdue(attempt=locked, now=now)
        if not overdue:
            answer, _ = Answer.objects.update_or_create(attempt=locked, question=question, defaults={"text": text})
            if question.is_choice:
                answer.selected_choices.set(selected)
    if overdue:
        # Expire outside the block above: raising inside it would roll the expiry back.
        attempt_expire(attempt=locked, now=now)
        raise DeadlinePassed()
    return answer


def attempt_submit(*, attempt: Attempt, now: datetime | None = None) -> Attempt:
    """Submit and grade an attempt. Idempotent: a second submit (a double click, a retry) returns it unchanged.

    A submit that arrives after the deadline expires the attempt instead: the answers saved in time still count.
    """
    now = _now(now)
    with transaction.atomic():
        locked = Attempt.objects.select_for_update().get(pk=attempt.pk)
        if locked.status != Attempt.Status.IN_PROGRESS:
            return locked
        if attempt_is_overdue(attempt=locked, now=now):
            return attempt_expire(attempt=locked, now=now)
        locked.status = Attempt.Status.SUBMITTED
        locked.submitted_at = now
        _attempt_grade(locked, now=now)
        locked.save()
        _closed_on_commit(locked)
        _graded_on_commit(locked)
    return locked


def attempt_expire(*, attempt: Attempt, now: datetime | None = None) -> Attempt:
    """Close an overdue attempt and grade what was saved. Does nothing to an attempt that still has time.

    Called lazily whenever an overdue attempt is touched (the exam page, autosave, start, dashboards), so no
    scheduler is needed; `attempts_expire_overdue` sweeps the rest in bulk for a periodic job.
    """
    now = _now(now)
    with transaction.atomic():
        locked = Attempt.objects.select_for_update().get(pk=attempt.pk)
        if not attempt_is_overdue(attempt=locked, now=now):
            return locked
        locked.status = Attempt.Status.EXPIRED
        # Nothing arrived after the deadline, so that is when the attempt effectively ended.
        locked.submitted_at = locked.deadline
        _attempt_grade(locked, now=now)
        locked.save()
        _closed_on_commit(locked)
        _graded_on_commit(locked)
    return locked


def _graded_on_commit(attempt: Attempt) -> None:
    """Tell whoever follows grades (the LMS grade book) once the new score is committed."""
    transaction.on_commit(lambda: attempt_graded.send_robust(sender=Attempt, attempt=attempt), robust=True)


def _closed_on_commit(attempt: Attempt) -> None:
    """Say that the attempt closed once its closing has committed (never for a rolled-back one); proctoring ends
    its session then.

    Robust: the attempt is already closed by then, and must stay closed even if a receiver fails (send_robust logs
    it); the live socket would still end the session on its next frame or on disconnect, both of which check the
    attempt."""
    transaction.on_commit(lambda: attempt_closed.send_robust(sender=Attempt, attempt=attempt), robust=True)


def attempts_expire_overdue(*, now: datetime | None = None) -> int:
    """Expire every overdue attempt; returns how many. For a periodic job; pages expire lazily on their own."""
    now = _now(now)
    overdue = Attempt.objects.filter(status=Attempt.Status.IN_PROGRESS, deadline__lt=now - DEADLINE_GRACE)
    count = 0
    for attempt in overdue.iterator():
        if attempt_expire(attempt=attempt, now=now).status == Attempt.Status.EXPIRED:
            count += 1
    return count


def _exam_max_score(exam: Exam) -> Decimal:
    return sum((q.points for q in exam.questions.all()), Decimal("0"))


def _attempt_grade(attempt: Attempt, *, now: datetime) -> None:
    """Grade choice questions and total the score. The caller saves the attempt.

    Single choice: full points for the correct choice. Multiple choice: full points only for exactly the correct
    set (no partial credit, so guessing every box earns nothing). Short answers keep their manual grade; a blank
    one scores 0 without waiting for a grader, since there is nothing to read.
    """
    questions = list(attempt.exam.questions.prefetch_related("choices"))
    answers = {a.question_id: a for a in attempt.answers.prefetch_related("selected_choices")}
    total = Decimal("0")
    maximum = Decimal("0")
    pending = False
    for question in questions:
        maximum += question.points
        answer = answers.get(question.id)
        if question.is_choice:
            correct = {c.id for c in question.choices.all() if c.is_correct}
            chosen = {c.id for c in answer.selected_choices.all()} if answer else set()
            points = question.points if chosen and chosen == correct else Decimal("0")
            total += points
            if answer is not None and (answer.points_awarded != points or answer.graded_at is None):
                answer.points_awarded = points
                answer.graded_at = now
                answer.graded_by = None
                answer.save(update_fields=["points_awarded", "graded_at", "graded_by"])
        elif answer is None or not answer.text.strip():
            if answer is not None and answer.points_awarded is None:
                answer.points_awarded = Decimal("0")
                answer.graded_at = now
                answer.save(update_fields=["points_awarded", "graded_at"])
        elif answer.points_awarded is None:
            pending = True
        else:
            total += answer.points_awarded
    attempt.score = total
    attempt.max_score = maximum
    attempt.fully_graded = not pending


def answer_grade(
    *,
    answer: Answer,
    grader: User,
    points: Decimal | int | str,
    feedback: str = "",
    now: datetime | None = None,
) -> Answer:
    """Grade a short answer by hand, then re-total the attempt's score and whether it is fully graded."""
    now = _now(now)
    question = answer.question
    # Read the attempt afresh: the caller's copy may predate a submit.
    attempt = Attempt.objects.select_related("exam").get(pk=answer.attempt_id)
    if not user_can_manage_exam(user=grader, exam=attempt.exam):
        raise NotAllowed("Only the exam's owner can grade its answers.")
    if question.kind != Question.Kind.SHORT:
        raise InvalidGrade("Choice questions are graded automatically.")
    if attempt.status == Attempt.Status.IN_PROGRESS and not attempt_is_overdue(attempt=attempt, now=now):
        raise InvalidGrade("This attempt is still in progress; grade it once it has been submitted.")
    try:
        value = Decimal(str(points)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise InvalidGrade("Points must be a number.") from None
    if not value.is_finite() or value < 0 or value > question.points:
        raise InvalidGrade(f"Points must be between 0 and {question.points}.")

    with transaction.atomic():
        locked = Attempt.objects.select_for_update().get(pk=attempt.pk)
        if locked.status == Attempt.Status.IN_PROGRESS:
            locked = attempt_expire(attempt=locked, now=now)
        answer.points_awarded = value
        answer.feedback = feedback.strip()
        answer.graded_by = grader
        answer.graded_at = now
        answer.save(update_fields=["points_awarded", "feedback", "graded_by", "graded_at"])
        _attempt_grade(locked, now=now)
        locked.save(update_fields=["score", "max_score", "fully_graded"])
        _graded_on_commit(locked)
    return answer


# --------------------------------------------------------------------------------------------------------------
# Authoring
# --------------------------------------------------------------------------------------------------------------


def _check_exam_fields(
    *, title: str, opens_at: datetime, closes_at: datetime, duration_minutes: int, max_attempts: int
) -> None:
    if not title.strip():
        raise InvalidExam("Give the exam a title.")
    if closes_at <= opens_at:
        raise InvalidExam("The exam must close after it opens.")
    if duration_minutes < 1:
        raise InvalidExam("The duration must be at least one minute.")
    if max_attempts < 1:
        raise InvalidExam("Allow at least one attempt.")


def _identity_assurance(value: str) -> str:
    if value not in Exam.IdentityAssurance.values:
        raise InvalidExam(
            f"Unknown identity assurance {value!r}: use one of {', '.join(Exam.IdentityAssurance.values)}."
        )
    return value


def exam_create(
    *,
    owner: User,
    title: str,
    opens_at: datetime,
    closes_at: datetime,
    duration_minutes: int,
    instructions: str = "",
    max_attempts: int = 1,
    proctoring_enabled: bool = True,
    proctoring_settings: dict[str, Any] | None = None,
    identity_assurance: str | None = None,
    photo_id_required: bool | None = None,
    time_zone: str | None = None,
) -> Exam:
    """Create an exam. `time_zone` is the zone its times were entered in (default: the active one, the
    instructor's), shown to students beside their own local time."""
    if not user_can_manage_exams(user=owner):
        raise NotAllowed("Only instructors can create exams.")
    _check_exam_fields(
        title=title,
        opens_at=opens_at,
        closes_at=closes_at,
        duration_minutes=duration_minutes,
        max_attempts=max_attempts,
    )
    return Exam.objects.create(
        owner=owner,
        title=title.strip(),
        instructions=instructions,
        opens_at=opens_at,
        closes_at=closes_at,
        duration_minutes=duration_minutes,
        max_attempts=max_attempts,
        proctoring_enabled=proctoring_enabled,
        proctoring_settings=dict(proctoring_settings or {}),
        identity_assurance=_identity_assurance(identity_assurance or Exam.IdentityAssurance.NONE),
        photo_id_required=bool(photo_id_required),
        time_zone=time_zone or timezone.get_current_timezone_name(),
        published=False,
    )


def exam_update(
    *,
    exam: Exam,
    title: str,
    opens_at: datetime,
    closes_at: datetime,
    duration_minutes: int,
    instructions: str = "",
    max_attempts: int = 1,
    proctoring_enabled: bool = True,
    proctoring_settings: dict[str, Any] | None = None,
    identity_assurance: str | None = None,
    photo_id_required: bool | None = None,
    time_zone: str | None = None,
) -> Exam:
    """Update an exam. Proctoring settings are merged over the stored ones, so keys this form doesn't know (set by
    the proctoring app or the admin) survive an edit."""
    _check_exam_fields(
        title=title,
        opens_at=opens_at,
        closes_at=closes_at,
        duration_minutes=duration_minutes,
        max_attempts=max_attempts,
    )
    exam.title = title.strip()
    exam.instructions = instructions
    exam.opens_at = opens_at
    exam.closes_at = closes_at
    exam.duration_minutes = duration_minutes
    exam.max_attempts = max_attempts
    exam.proctoring_enabled = proctoring_enabled
    exam.proctoring_settings = {**(exam.proctoring_settings or {}), **(proctoring_settings or {})}
    if identity_assurance is not None:
        exam.identity_assurance = _identity_assurance(identity_assurance)
    if photo_id_required is not None:
        exam.photo_id_required = photo_id_required
    exam.time_zone = time_zone or timezone.get_current_timezone_name()
    exam.save()
    return exam


def exam_publish(*, exam: Exam, published: bool = True) -> Exam:
    """Publish (students can see and start it) or unpublish. An exam without questions can't be published."""
    if published and not exam.questions.exists():
        raise InvalidExam("Add at least one question before publishing.")
    if exam.published != published:
        exam.published = published
        exam.save(update_fields=["published", "updated_at"])
    return exam


@dataclass(frozen=True)
class ChoiceSpec:
    """One choice as the question form sends it; id is None for a new choice."""

    text: str
    is_correct: bool = False
    id: int | None = None


def _ensure_questions_editable(exam: Exam) -> None:
    if exam.attempts.exists():
        raise ExamLocked()


def _check_question(*, kind: str, text: str, points: Decimal | int | str, choices: Sequence[ChoiceSpec]) -> Decimal:
    if kind not in Question.Kind.values:
        raise InvalidExam("Pick a question kind.")
    if not text.strip():
        raise InvalidExam("Write the question's text.")
    try:
        value = Decimal(str(points))
    except (InvalidOperation, ValueError):
        raise InvalidExam("Points must be a number.") from None
    if not value.is_finite() or value < 0:
        raise InvalidExam("Points can't be negative.")
    if any(not c.text.strip() for c in choices):
        raise InvalidExam("Every choice needs some text.")
    if kind == Question.Kind.SHORT:
        if choices:
            raise InvalidExam("A short-answer question has no choices: remove them, or pick a choice kind.")
        return value
    if len(choices) < 2:
        raise InvalidExam("A choice question needs at least two choices.")
    correct = sum(1 for c in choices if c.is_correct)
    if kind == Question.Kind.SINGLE and correct != 1:
        raise InvalidExam("Mark exactly one choice as correct for a single-choice question.")
    if kind == Question.Kind.MULTIPLE and correct < 1:
        raise InvalidExam("Mark at least one choice as correct.")
    return value


def question_create(
    *,
    exam: Exam,
    kind: str,
    text: str,
    points: Decimal | int | str = 1,
    choices: Sequence[ChoiceSpec] = (),
) -> Question:
    _ensure_questions_editable(exam)
    value = _check_question(kind=kind, text=text, points=points, choices=choices)
    with transaction.atomic():
        last = exam.questions.aggregate(last=Max("order"))["last"]
        question = Question.objects.create(
            exam=exam, kind=kind, text=text.strip(), points=value, order=0 if last is None else last + 1
        )
        Choice.objects.bulk_create(
            Choice(question=question, text=c.text.strip(), is_correct=c.is_correct, order=i)
            for i, c in enumerate(choices)
        )
    return question


def question_update(
    *,
    question: Question,
    kind: str,
    text: str,
    points: Decimal | int | str,
    choices: Sequence[ChoiceSpec],
) -> Question:
    """Replace a question's fields and choices: choices with an id are updated, new ones created, missing ones
    deleted."""
    _ensure_questions_editable(question.exam)
    value = _check_question(kind=kind, text=text, points=points, choices=choices)
    with transaction.atomic():
        existing = {c.id: c for c in question.choices.all()}
        unknown = {c.id for c in choices if c.id is not None} - existing.keys()
        if unknown:
            raise InvalidExam("One of the choices doesn't belong to this question; reload the page and try again.")
        question.kind = kind
        question.text = text.strip()
        question.points = value
        question.save()
        kept: set[int] = set()
        for i, spec in enumerate(choices):
            if spec.id is None:
                Choice.objects.create(question=question, text=spec.text.strip(), is_correct=spec.is_correct, order=i)
                continue
            choice = existing[spec.id]
            choice.text, choice.is_correct, choice.order = spec.text.strip(), spec.is_correct, i
            choice.save()
            kept.add(spec.id)
        Choice.objects.filter(question=question, id__in=set(existing) - kept).delete()
    return question


def question_delete(*, question: Question) -> None:
    _ensure_questions_editable(question.exam)
    exam = question.exam
    with transaction.atomic():
        question.delete()
        _questions_renumber(exam)


def question_move(*, question: Question, direction: str) -> Question:
    """Move a question one place up or down. Reordering doesn't change grading, so it's allowed at any time."""
    if direction not in ("up", "down"):
        raise InvalidExam("Move a question up or down.")
    with transaction.atomic():
        ordered = _questions_renumber(question.exam)
        index = next(i for i, q in enumerate(ordered) if q.id == question.id)
        other = index - 1 if direction == "up" else index + 1
        if 0 <= other < len(ordered):
            a, b = ordered[index], ordered[other]
            a.order, b.order = b.order, a.order
            Question.objects.bulk_update([a, b], ["order"])
            question.order = a.order
    return question


def _questions_renumber(exam: Exam) -> list[Question]:
    ordered = list(Question.objects.select_for_update().filter(exam=exam).order_by("order", "id"))
    changed = []
    for i, q in enumerate(ordered):
        if q.order != i:
            q.order = i
            changed.append(q)
    if changed:
        Question.objects.bulk_update(changed, ["order"])
    return ordered


# --------------------------------------------------------------------------------------------------------------
# Enrolment
# --------------------------------------------------------------------------------------------------------------


@dataclass
class EnrollmentReport:
    """What enrollment_add_many did, entry by entry, so the page can say exactly what happened."""

    added: list[User] = field(default_factory=list)
    already: list[User] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    not_students: list[str] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)

    @property
    def problems(self) -> bool:
        return bool(self.unknown or self.not_students or self.ambiguous)


_SEPARATORS = re.compile(r"[\s,;]+")


def enrollment_add_many(*, exam: Exam, users: Iterable[User] = (), identifiers: str = "") -> EnrollmentReport:
    """Enrol students picked from a list and/or pasted as usernames or emails (one per line, or separated by
    commas). Matching ignores case. Unknown entries, non-students and emails shared by several accounts are
    reported, never guessed; everything else is enrolled, and existing enrolments are left as they are."""
    report = EnrollmentReport()
    tokens = list(dict.fromkeys(t for t in _SEPARATORS.split(identifiers or "") if t))
    wanted: dict[int, User] = {u.pk: u for u in users}

    if tokens:
        lowered = {t.lower() for t in tokens}
        candidates = list(
            User.objects.annotate(u=Lower("username"), e=Lower("email")).filter(Q(u__in=lowered) | Q(e__in=lowered))
        )
        for token in tokens:
            low = token.lower()
            by_name = [u for u in candidates if u.username.lower() == low]
            matches = by_name or [u for u in candidates if u.email and u.email.lower() == low]
            if not matches:
                report.unknown.append(token)
            elif len(matches) > 1:
                report.ambiguous.append(token)
            else:
                wanted.setdefault(matches[0].pk, matches[0])

    students = []
    for user in wanted.values():
        if user.role != User.Role.STUDENT:
            report.not_students.append(user.username)
        else:
            students.append(user)

    with transaction.atomic():
        enrolled = set(Enrollment.objects.filter(exam=exam, student__in=students).values_list("student_id", flat=True))
        for user in students:
            (report.already if user.pk in enrolled else report.added).append(user)
        Enrollment.objects.bulk_create([Enrollment(exam=exam, student=u) for u in report.added], ignore_conflicts=True)
    return report


def enrollment_update(*, enrollment: Enrollment, extra_minutes: int) -> Enrollment:
    """Set a student's extra time. It applies to attempts started from now on."""
    if extra_minutes < 0 or extra_minutes > 24 * 60:
        raise InvalidExam("Extra time must be between 0 and 1440 minutes.")
    enrollment.extra_minutes = extra_minutes
    enrollment.save(update_fields=["extra_minutes"])
    return enrollment


def enrollment_remove(*, enrollment: Enrollment) -> None:
    """Remove a student from an exam. Their past attempts stay, for the record."""
    enrollment.delete()
