from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from exams import services
from exams.exceptions import ExamLocked, InvalidExam, NotAllowed
from exams.models import Enrollment, Question
from exams.services import ChoiceSpec
from tests.factories import AdminFactory, ExamFactory, InstructorFactory, StudentFactory

TWO = [ChoiceSpec(text="Yes", is_correct=True), ChoiceSpec(text="No")]


def _window():
    now = timezone.now()
    return {"opens_at": now, "closes_at": now + timedelta(days=1), "duration_minutes": 45}


def test_an_instructor_creates_a_draft_exam(ivan):
    exam = services.exam_create(owner=ivan, title="  Chemistry ", **_window())
    assert exam.owner == ivan
    assert exam.title == "Chemistry"
    assert exam.published is False
    assert exam.proctoring_enabled is True


def test_a_student_cannot_create_an_exam(alice):
    with pytest.raises(NotAllowed):
        services.exam_create(owner=alice, title="Mine", **_window())


def test_an_exam_must_close_after_it_opens(ivan):
    window = _window()
    window["closes_at"] = window["opens_at"]
    with pytest.raises(InvalidExam, match="close after"):
        services.exam_create(owner=ivan, title="Backwards", **window)


def test_an_update_keeps_proctoring_settings_the_form_does_not_know(ivan):
    exam = services.exam_create(
        owner=ivan, title="Biology", proctoring_settings={"cooldown_seconds": 9, "sensitivity": "low"}, **_window()
    )
    services.exam_update(exam=exam, title="Biology", proctoring_settings={"sensitivity": "high"}, **_window())
    exam.refresh_from_db()
    assert exam.proctoring_settings == {"cooldown_seconds": 9, "sensitivity": "high"}


def test_an_exam_without_questions_cannot_be_published(ivan):
    exam = ExamFactory(owner=ivan, published=False)
    with pytest.raises(InvalidExam, match="at least one question"):
        services.exam_publish(exam=exam)
    services.question_create(exam=exam, kind=Question.Kind.SINGLE, text="Ready?", choices=TWO)
    assert services.exam_publish(exam=exam).published is True
    assert services.exam_publish(exam=exam, published=False).published is False


@pytest.mark.parametrize(
    ("kind", "choices", "message"),
    [
        (Question.Kind.SINGLE, [ChoiceSpec(text="Only", is_correct=True)], "at least two"),
        (Question.Kind.SINGLE, [ChoiceSpec(text="A", is_correct=True), ChoiceSpec(text="B", is_correct=True)], "one"),
        (Question.Kind.SINGLE, [ChoiceSpec(text="A"), ChoiceSpec(text="B")], "exactly one"),
        (Question.Kind.MULTIPLE, [ChoiceSpec(text="A"), ChoiceSpec(text="B")], "at least one"),
        (Question.Kind.SHORT, TWO, "no choices"),
        (Question.Kind.SINGLE, [ChoiceSpec(text=" ", is_correct=True), ChoiceSpec(text="B")], "needs some text"),
    ],
)
def test_question_rules_are_checked(ivan, kind, choices, message):
    exam = ExamFactory(owner=ivan)
    with pytest.raises(InvalidExam, match=message):
        services.question_create(exam=exam, kind=kind, text="Q", choices=choices)
    assert not exam.questions.exists()


def test_questions_are_appended_in_order_and_can_be_moved(ivan):
    exam = ExamFactory(owner=ivan)
    first = services.question_create(exam=exam, kind=Question.Kind.SHORT, text="First")
    second = services.question_create(exam=exam, kind=Question.Kind.SHORT, text="Second")
    assert [q.text for q in exam.questions.all()] == ["First", "Second"]
    services.question_move(question=second, direction="up")
    assert [q.text for q in exam.questions.all()] == ["Second", "First"]
    services.question_move(question=second, direction="up")  # already first: nothing happens
    services.question_move(question=first, direction="down")  # already last
    assert [q.text for q in exam.questions.all()] == ["Second", "First"]


def test_updating_a_question_updates_adds_and_removes_choices(ivan):
    exam = ExamFactory(owner=ivan)
    question = services.question_create(exam=exam, kind=Question.Kind.SINGLE, text="Pick", choices=TWO)
    yes, no = question.choices.all()
    services.question_update(
        question=question,
        kind=Question.Kind.MULTIPLE,
        text="Pick all",
        points=2,
        choices=[ChoiceSpec(text="Yes!", is_correct=True, id=yes.id), ChoiceSpec(text="Maybe", is_correct=True)],
    )
    question.refresh_from_db()
    assert question.kind == Question.Kind.MULTIPLE and question.points == 2
    assert [(c.text, c.is_correct) for c in question.choices.all()] == [("Yes!", True), ("Maybe", True)]
    assert not question.choices.filter(pk=no.pk).exists()


def test_questions_are_locked_once_a_student_has_started(paper, alice):
    services.attempt_start(exam=paper.exam, student=alice)
    with pytest.raises(ExamLocked):
        services.question_create(exam=paper.exam, kind=Question.Kind.SHORT, text="Late addition")
    with pytest.raises(ExamLocked):
        services.question_delete(question=paper.single)
    services.question_move(question=paper.short, direction="up")  # reordering stays allowed


def test_enrolling_by_pasted_names_and_emails_reports_what_it_could_not_match(ivan):
    exam = ExamFactory(owner=ivan)
    alice = StudentFactory(username="alice", email="alice@uni.example")
    bob = StudentFactory(username="bob")
    StudentFactory(username="dana")  # not in the paste, so not enrolled
    Enrollment.objects.create(exam=exam, student=bob)
    report = services.enrollment_add_many(
        exam=exam, identifiers="ALICE@uni.example,  bob\nnobody;ivan\n\nnobody@example.com"
    )
    assert report.added == [alice]
    assert report.already == [bob]
    assert report.unknown == ["nobody", "nobody@example.com"]
    assert report.not_students == ["ivan"]
    assert set(exam.enrollments.values_list("student__username", flat=True)) == {"alice", "bob"}


def test_enrolling_picked_students_twice_creates_no_duplicates(ivan, alice, bob):
    exam = ExamFactory(owner=ivan)
    services.enrollment_add_many(exam=exam, users=[alice])
    report = services.enrollment_add_many(exam=exam, users=[alice, bob], identifiers="alice")
    assert report.added == [bob]
    assert report.already == [alice]
    assert exam.enrollments.count() == 2


def test_an_email_shared_by_two_accounts_is_reported_not_guessed(ivan):
    exam = ExamFactory(owner=ivan)
    StudentFactory(username="twin1", email="twins@example.com")
    StudentFactory(username="twin2", email="twins@example.com")
    report = services.enrollment_add_many(exam=exam, identifiers="twins@example.com")
    assert report.ambiguous == ["twins@example.com"]
    assert not exam.enrollments.exists()


def test_an_admin_may_create_an_exam_too(db):
    admin = AdminFactory(username="root")
    assert services.exam_create(owner=admin, title="Admin-made", **_window()).owner == admin
    assert InstructorFactory().is_instructor
