from __future__ import annotations

import pytest
from django.utils import timezone

from tests.conftest import sign_in
from tests.factories import (
    DEFAULT_PASSWORD,
    AdminFactory,
    ChoiceFactory,
    EnrollmentFactory,
    ExamFactory,
    InstructorFactory,
    QuestionFactory,
    StudentFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def test_role_factories_give_the_role_and_matching_admin_flags():
    alice, bob, charlie = AdminFactory(), InstructorFactory(), StudentFactory()

    assert (alice.role, alice.is_staff, alice.is_superuser) == ("admin", True, True)
    assert (bob.role, bob.is_staff, bob.is_superuser) == ("instructor", False, False)
    assert (charlie.role, charlie.is_staff, charlie.is_superuser) == ("student", False, False)


def test_every_user_can_log_in_with_the_default_or_a_given_password(client):
    UserFactory(username="alice")
    UserFactory(username="bob", password="bobs-own-pass")

    assert sign_in(client, "alice", DEFAULT_PASSWORD)
    assert sign_in(client, "bob", "bobs-own-pass")


def test_exam_factories_build_an_open_published_exam_with_an_enrolled_student():
    choice = ChoiceFactory(is_correct=True)
    exam = choice.question.exam
    enrollment = EnrollmentFactory(exam=exam)
    QuestionFactory(exam=exam)

    assert exam.published and exam.opens_at < timezone.now() < exam.closes_at
    assert exam.owner.role == "instructor"
    assert exam.questions.count() == 2
    assert enrollment.student.role == "student"
    assert ExamFactory().owner != exam.owner
