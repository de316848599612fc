"""Fixtures for the exams tests: an open exam with one question of each kind, owned by ivan, alice enrolled."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from accounts.models import User
from exams.models import Choice, Exam, Question
from tests.factories import (
    ChoiceFactory,
    EnrollmentFactory,
    ExamFactory,
    InstructorFactory,
    QuestionFactory,
    StudentFactory,
)


@dataclass
class Paper:
    exam: Exam
    single: Question
    single_right: Choice
    single_wrong: Choice
    multiple: Question
    multiple_right: tuple[Choice, Choice]
    multiple_wrong: Choice
    short: Question


@pytest.fixture
def ivan(db) -> User:
    return InstructorFactory(username="ivan")


@pytest.fixture
def alice(db) -> User:
    return StudentFactory(username="alice")


@pytest.fixture
def bob(db) -> User:
    return StudentFactory(username="bob")


@pytest.fixture
def paper(ivan: User, alice: User) -> Paper:
    exam = ExamFactory(owner=ivan, title="Physics", duration_minutes=30)
    single = QuestionFactory(exam=exam, kind=Question.Kind.SINGLE, points=1, order=0)
    single_right = ChoiceFactory(question=single, text="Mercury", is_correct=True)
    single_wrong = ChoiceFactory(question=single, text="Venus")
    multiple = QuestionFactory(exam=exam, kind=Question.Kind.MULTIPLE, points=2, order=1)
    right_a = ChoiceFactory(question=multiple, text="2", is_correct=True)
    right_b = ChoiceFactory(question=multiple, text="11", is_correct=True)
    multiple_wrong = ChoiceFactory(question=multiple, text="9")
    short = QuestionFactory(exam=exam, kind=Question.Kind.SHORT, points=3, order=2, text="Why is the sky blue?")
    EnrollmentFactory(exam=exam, student=alice)
    return Paper(exam, single, single_right, single_wrong, multiple, (right_a, right_b), multiple_wrong, short)
