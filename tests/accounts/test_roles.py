from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from accounts.models import User
from accounts.services import role_access, user_create, user_role_set
from tests.conftest import sign_in
from tests.factories import InstructorFactory, StudentFactory

pytestmark = pytest.mark.django_db


def test_an_admin_gets_staff_and_superuser():
    alice = user_create(username="alice", email="alice@example.com", role=User.Role.ADMIN, password="pw-for-alice-1")

    assert alice.is_staff and alice.is_superuser
    assert alice.is_platform_admin
    assert alice.check_password("pw-for-alice-1")


def test_an_instructor_gets_no_admin_access_by_default():
    bob = user_create(username="bob", email="bob@example.com", role=User.Role.INSTRUCTOR, password="pw-for-bob-12")

    assert not bob.is_staff and not bob.is_superuser
    assert bob.is_instructor


def test_a_student_gets_no_admin_access():
    charlie = user_create(username="charlie", email="charlie@example.com", role=User.Role.STUDENT)

    assert not charlie.is_staff and not charlie.is_superuser
    assert charlie.is_student


def test_a_user_created_without_password_cannot_log_in(client):
    user_create(username="charlie", email="charlie@example.com", role=User.Role.STUDENT)

    charlie = User.objects.get(username="charlie")
    assert not charlie.has_usable_password()
    assert not sign_in(client, "charlie", "")


def test_user_create_refuses_an_unknown_role_and_a_taken_username():
    StudentFactory(username="alice")

    with pytest.raises(ValidationError, match="Unknown role"):
        user_create(username="bob", email="bob@example.com", role="teacher")
    with pytest.raises(ValidationError):
        user_create(username="alice", email="other@example.com", role=User.Role.STUDENT)
    assert not User.objects.filter(username="bob").exists()


def test_user_create_normalises_the_email_domain():
    alice = user_create(username="alice", email="alice@EXAMPLE.com", role=User.Role.STUDENT)

    assert alice.email == "alice@example.com"


def test_promoting_to_admin_grants_and_demoting_takes_access_away():
    bob = InstructorFactory(username="bob")

    user_role_set(user=bob, role=User.Role.ADMIN)
    bob.refresh_from_db()
    assert (bob.is_staff, bob.is_superuser) == (True, True)

    user_role_set(user=bob, role=User.Role.INSTRUCTOR)
    bob.refresh_from_db()
    assert (bob.is_staff, bob.is_superuser) == (False, False)


def test_an_instructor_given_staff_by_hand_keeps_it_but_a_student_does_not():
    # Pure rule: the hand-given flag survives a change between non-admin roles only while staying an instructor.
    assert role_access(role="instructor", previous_role="student", is_staff=True, is_superuser=False) == (True, False)
    assert role_access(role="student", previous_role="instructor", is_staff=True, is_superuser=False) == (False, False)
    assert role_access(role="instructor", previous_role="admin", is_staff=True, is_superuser=True) == (False, False)
    assert role_access(role="admin", previous_role=None, is_staff=False, is_superuser=False) == (True, True)
