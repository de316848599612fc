"""Actors and a proctored exam for the review tests.

alice and bob are students; charlie is the instructor who owns the exam; diana is another instructor; root is a
platform admin. alice's attempt has a full stored session (tests/review/builders.py): five flags, one of each kind.
"""

from __future__ import annotations

import pytest

from tests.factories import AdminFactory, EnrollmentFactory, ExamFactory, InstructorFactory, StudentFactory
from tests.review.builders import build_proctored_attempt


@pytest.fixture(autouse=True)
def _fast_and_private(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.PRIVATE_STORAGE_DIR = tmp_path / "private"


@pytest.fixture
def alice(db):
    return StudentFactory(username="alice", first_name="Alice", last_name="Adams")


@pytest.fixture
def bob(db):
    return StudentFactory(username="bob", first_name="Bob", last_name="Brown")


@pytest.fixture
def charlie(db):
    return InstructorFactory(username="charlie", first_name="Charlie")


@pytest.fixture
def diana(db):
    return InstructorFactory(username="diana", first_name="Diana")


@pytest.fixture
def root(db):
    return AdminFactory(username="root")


@pytest.fixture
def exam(charlie):
    exam = ExamFactory(owner=charlie, title="Organic Chemistry Final")
    return exam


@pytest.fixture
def alice_attempt(exam, alice):
    EnrollmentFactory(exam=exam, student=alice)
    return build_proctored_attempt(exam=exam, student=alice)


@pytest.fixture
def bob_attempt(exam, bob):
    EnrollmentFactory(exam=exam, student=bob)
    return build_proctored_attempt(exam=exam, student=bob, script=[("alice", 10), ("phone", 5), ("alice", 5)])
