"""Reads for exams: what each page shows, fetched in a fixed, small number of queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from accounts.models import User

from .hooks import exam_has_evidence, setup_status
from .models import Answer, Attempt, Choice, Enrollment, Exam, Question
from .permissions import exams_managed_by


def exam_manageable(*, user: User, exam_id: int) -> Exam | None:
    return exams_managed_by(user=user).filter(pk=exam_id).first()


def exams_for_manager_list(*, user: User) -> QuerySet[Exam]:
    return exams_managed_by(user=user).annotate(
        question_count=Count("questions", distinct=True),
        student_count=Count("enrollments", distinct=True),
        attempt_count=Count("attempts", distinct=True),
    )


def exam_with_questions(*, exam_id: int) -> QuerySet[Exam]:
    return Exam.objects.filter(pk=exam_id).prefetch_related(
        Prefetch("questions", queryset=Question.objects.prefetch_related("choices"))
    )


def exam_by_id(*, exam_id: int) -> Exam | None:
    return Exam.objects.filter(pk=exam_id).first()


def exam_for_student(*, student: User, exam_id: int) -> Exam | None:
    """A published exam the student is enrolled in; None for any other (ids reveal nothing)."""
    return Exam.objects.select_related("owner").filter(pk=exam_id, published=True, enrollments__student=student).first()


def exam_published(*, exam_id: int) -> Exam | None:
    return Exam.objects.select_related("owner").filter(pk=exam_id, published=True).first()


def student_attempts(*, exam: Exam, student: User) -> list[Attempt]:
    """The student's attempts at the exam, first to last."""
    return list(Attempt.objects.filter(exam=exam, student=student).order_by("number"))


def exam_question(*, exam_id: int, question_id: int) -> Question | None:
    return Question.objects.filter(pk=question_id, exam_id=exam_id).first()


def exam_questions(*, exam_id: int) -> QuerySet[Question]:
    return Question.objects.filter(exam_id=exam_id)


def exam_question_count(*, exam: Exam) -> int:
    return Question.objects.filter(exam=exam).count()


def exam_has_attempts(*, exam: Exam) -> bool:
    """Whether anyone has started the exam: its questions can no longer change."""
    return Attempt.objects.filter(exam=exam).exists()


def exam_enrollment(*, exam: Exam, enrollment_id: int) -> Enrollment | None:
    return Enrollment.objects.select_related("student").filter(exam=exam, pk=enrollment_id).first()


def exam_attempt(*, exam: Exam, attempt_id: int) -> Attempt | None:
    return Attempt.objects.select_related("student", "exam").filter(exam=exam, pk=attempt_id).first()


def attempt_answer(*, attempt: Attempt, answer_id: object) -> Answer | None:
    """One answer of the attempt, by an id as posted (anything that is not a whole number finds none)."""
    try:
        pk = int(str(answer_id))
    except ValueError:
        return None
    return Answer.objects.select_related("question", "attempt__exam").filter(pk=pk, attempt=attempt).first()


def student_attempt(*, student: User, attempt_id: int) -> Attempt | None:
    """The student's own attempt; None for anyone else's (a 404, which does not confirm that it exists)."""
    return attempt_for_student(student=student).filter(pk=attempt_id).first()


@dataclass(frozen=True)
class ExamOverview:
    """The manage page of one exam."""

    questions: list[Question]
    locked: bool  # attempts exist: questions can no longer change
    enrollments: QuerySet[Enrollment]
    attempts: QuerySet[Attempt]
    needs_grading: int
    # The review pages matter as long as there is evidence, even after proctoring is switched off.
    proctored: bool
    # Opened from an LMS course (LTI): its links, roster and grade book page.
    in_lms: bool

    @property
    def max_score(self) -> Decimal:
        return sum((q.points for q in self.questions), start=Decimal("0"))


def exam_overview(*, exam: Exam) -> ExamOverview:
    return ExamOverview(
        questions=list(Question.objects.filter(exam=exam).prefetch_related("choices")),
        locked=exam_has_attempts(exam=exam),
        enrollments=exam_enrollments(exam=exam),
        attempts=exam_attempts(exam=exam),
        needs_grading=attempts_needing_grading(exam=exam),
        proctored=exam.proctoring_enabled or exam_has_evidence(exam=exam),
        in_lms=exam.lti_links.exists(),
    )


def enrollment_for(*, exam: Exam, student: User) -> Enrollment | None:
    return Enrollment.objects.filter(exam=exam, student=student).first()


@dataclass(frozen=True)
class DashboardRow:
    exam: Exam
    enrollment: Enrollment
    open_attempt: Attempt | None
    latest_attempt: Attempt | None
    attempts_used: int

    @property
    def attempts_left(self) -> int:
        return max(self.exam.max_attempts - self.attempts_used, 0)


@dataclass(frozen=True)
class StudentDashboard:
    upcoming: list[DashboardRow]
    open: list[DashboardRow]
    finished: list[DashboardRow]


def student_dashboard(*, student: User, now: datetime | None = None) -> StudentDashboard:
    """The student's published exams, split into upcoming, open (can start or resume now) and finished (closed,
    or no attempt left). Overdue attempts are expected to have been expired by the caller."""
    now = now or timezone.now()
    enrollments = list(
        Enrollment.objects.filter(student=student, exam__published=True)
        .select_related("exam", "exam__owner")
        .order_by("exam__opens_at", "exam_id")
    )
    attempts: dict[int, list[Attempt]] = {}
    for attempt in Attempt.objects.filter(student=student, exam__in=[e.exam_id for e in enrollments]).order_by(
        "number"
    ):
        attempts.setdefault(attempt.exam_id, []).append(attempt)

    upcoming, open_, finished = [], [], []
    for enrollment in enrollments:
        exam = enrollment.exam
        mine = attempts.get(exam.id, [])
        open_attempt = next((a for a in mine if a.status == Attempt.Status.IN_PROGRESS), None)
        row = DashboardRow(
            exam=exam,
            enrollment=enrollment,
            open_attempt=open_attempt,
            latest_attempt=mine[-1] if mine else None,
            attempts_used=len(mine),
        )
        if open_attempt is not None:
            open_.append(row)
        elif now < exam.opens_at:
            upcoming.append(row)
        elif now < exam.closes_at and row.attempts_left > 0:
            open_.append(row)
        else:
            finished.append(row)
    finished.sort(key=lambda r: r.exam.closes_at, reverse=True)
    return StudentDashboard(upcoming=upcoming, open=open_, finished=finished)


def attempts_overdue_for(*, student: User) -> QuerySet[Attempt]:
    return Attempt.objects.filter(student=student, status=Attempt.Status.IN_PROGRESS, deadline__lt=timezone.now())


def exam_setup_missing(*, exam: Exam, student: User, now: datetime | None = None) -> str | None:
    """The proctoring set-up step a student must finish before starting this exam ("consent", "enrolment",
    "photo_id" or "identity"), or None. Checked before the attempt starts, because the clock runs from the start: a
    student who finds out on the exam page that they still have to enrol loses exam time to it.

    Only a new attempt is gated: resuming one still in progress goes straight back to it, since its clock runs
    either way. Exams without proctoring need nothing, and a start that attempt_start would refuse anyway (not
    published, not enrolled, window shut, no attempt left) is left to it, so the student reads the real reason
    instead of being sent through set-up for nothing.
    """
    now = now or timezone.now()
    if not exam.proctoring_enabled or not exam.published or not exam.opens_at <= now < exam.closes_at:
        return None
    if enrollment_for(exam=exam, student=student) is None:
        return None
    attempts = exam.attempts.filter(student=student)
    if attempts.filter(status=Attempt.Status.IN_PROGRESS, deadline__gt=now).exists():
        return None
    if attempts.count() >= exam.max_attempts:
        return None
    status = setup_status(exam=exam, student=student)
    return status.missing if status is not None else None


def attempt_for_student(*, student: User) -> QuerySet[Attempt]:
    """Attempts a student may open: only their own."""
    return Attempt.objects.filter(student=student).select_related("exam", "student")


@dataclass(frozen=True)
class QuestionItem:
    """A question on the exam page or the results page, with the student's answer."""

    number: int
    question: Question
    choices: list[Choice]
    answer: Answer | None
    selected_ids: frozenset[int]

    @property
    def answered(self) -> bool:
        if self.answer is None:
            return False
        return bool(self.selected_ids) if self.question.is_choice else bool(self.answer.text.strip())

    @property
    def selected_texts(self) -> list[str]:
        return [c.text for c in self.choices if c.id in self.selected_ids]

    @property
    def pending(self) -> bool:
        """A short answer waiting for a grader."""
        return self.answer is not None and self.answer.points_awarded is None and self.answered

    @property
    def points_awarded(self) -> Decimal:
        if self.answer is None or self.answer.points_awarded is None:
            return Decimal("0")
        return self.answer.points_awarded


def attempt_questions(*, attempt: Attempt) -> list[QuestionItem]:
    """The exam's questions in order, each with this attempt's answer. Three queries whatever the size."""
    questions = list(Question.objects.filter(exam_id=attempt.exam_id).prefetch_related("choices"))
    answers = {
        a.question_id: a
        for a in Answer.objects.filter(attempt=attempt).prefetch_related("selected_choices").select_related("graded_by")
    }
    items = []
    for number, question in enumerate(questions, start=1):
        answer = answers.get(question.id)
        selected = frozenset(c.id for c in answer.selected_choices.all()) if answer else frozenset()
        items.append(
            QuestionItem(
                number=number,
                question=question,
                choices=list(question.choices.all()),
                answer=answer,
                selected_ids=selected,
            )
        )
    return items


def exam_attempts(*, exam: Exam) -> QuerySet[Attempt]:
    return exam.attempts.select_related("student").order_by("student__username", "number")


def exam_enrollments(*, exam: Exam) -> QuerySet[Enrollment]:
    return exam.enrollments.select_related("student").order_by("student__username")


def students_not_enrolled(*, exam: Exam) -> QuerySet[User]:
    return (
        User.objects.filter(role=User.Role.STUDENT, is_active=True).exclude(enrollments__exam=exam).order_by("username")
    )


def attempts_needing_grading(*, exam: Exam) -> int:
    return exam.attempts.filter(~Q(status=Attempt.Status.IN_PROGRESS), fully_graded=False).count()
