"""Factories shared by every test package.

Users:
    UserFactory(username="alice")            a student (the model's default role)
    StudentFactory / InstructorFactory / AdminFactory
    UserFactory(role=User.Role.INSTRUCTOR)   same as InstructorFactory
Every user can log in with DEFAULT_PASSWORD; pass password="..." for another one.

Exams (exams.models): ExamFactory is published and open now (opened an hour ago, closes in a day, 60 minutes),
owned by a new instructor. QuestionFactory is a single-choice question; ChoiceFactory an incorrect choice unless
is_correct=True; EnrollmentFactory enrols a new student. ExamFactory is proctored (proctoring_enabled=True): a
student starts it only after proctoring_ready(student) (consent and a face template), or pass proctoring_enabled=False.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache

import factory
from django.conf import settings
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX, identify_hasher, make_password
from django.utils import timezone

from accounts.models import User
from exams.models import Choice, Enrollment, Exam, Question

DEFAULT_PASSWORD = "correct-horse-battery-staple"


@cache
def _hashed(password: str, hashers: tuple[str, ...]) -> str:
    # Hashing with Django's default PBKDF2 work factor costs about half a second. Hash each password once per
    # hasher configuration instead of once per user, so a test that makes fifty users stays fast.
    return make_password(password)


def hashed_password(password: str = DEFAULT_PASSWORD) -> str:
    return _hashed(password, tuple(settings.PASSWORD_HASHERS))


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    first_name = factory.LazyAttribute(lambda u: u.username.capitalize())
    last_name = "Example"
    role = User.Role.STUDENT
    is_staff = factory.LazyAttribute(lambda u: u.role == User.Role.ADMIN)
    is_superuser = factory.LazyAttribute(lambda u: u.role == User.Role.ADMIN)
    password = factory.LazyFunction(hashed_password)

    @classmethod
    def _adjust_kwargs(cls, **kwargs):  # type: ignore[no-untyped-def]
        # Let tests write UserFactory(password="s3cret") and still get a hashed, working password.
        password = kwargs.get("password")
        if password and not password.startswith(UNUSABLE_PASSWORD_PREFIX):
            try:
                identify_hasher(password)
            except ValueError:
                kwargs["password"] = hashed_password(password)
        return kwargs


class StudentFactory(UserFactory):
    username = factory.Sequence(lambda n: f"student{n}")
    role = User.Role.STUDENT


class InstructorFactory(UserFactory):
    username = factory.Sequence(lambda n: f"instructor{n}")
    role = User.Role.INSTRUCTOR


class AdminFactory(UserFactory):
    username = factory.Sequence(lambda n: f"admin{n}")
    role = User.Role.ADMIN


class ExamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Exam

    owner = factory.SubFactory(InstructorFactory)
    title = factory.Sequence(lambda n: f"Exam {n}")
    instructions = "Answer every question."
    opens_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))
    closes_at = factory.LazyAttribute(lambda e: e.opens_at + timedelta(days=1, hours=1))
    duration_minutes = 60
    published = True
    max_attempts = 1
    proctoring_enabled = True


class QuestionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Question

    exam = factory.SubFactory(ExamFactory)
    kind = Question.Kind.SINGLE
    text = factory.Sequence(lambda n: f"Question {n}?")
    points = 1
    order = factory.Sequence(lambda n: n)


class ChoiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Choice

    question = factory.SubFactory(QuestionFactory)
    text = factory.Sequence(lambda n: f"Choice {n}")
    is_correct = False
    order = factory.Sequence(lambda n: n)


class EnrollmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Enrollment

    exam = factory.SubFactory(ExamFactory)
    student = factory.SubFactory(StudentFactory)


def proctoring_ready(user: User) -> User:
    """What a proctored exam needs before it starts: consent to the current notice, and a face template as the
    current embedding model makes it (the vector itself does not matter to the exams tests)."""
    from proctoring.models import FaceTemplate
    from proctoring.selectors import current_embedding_model
    from proctoring.services.consent import consent_record

    consent_record(user=user, accepted=True)
    pack, model_id = current_embedding_model()
    FaceTemplate.objects.update_or_create(
        user=user, defaults={"pack": pack, "model_id": model_id, "embedding": b"\0" * 16, "dim": 4}
    )
    return user
