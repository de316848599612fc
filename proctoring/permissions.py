"""Who may do what in proctoring: one module, so that services, selectors, views and the consumers ask the same
questions the same way (issue 10). Reads only."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from accounts.models import User
from exams.models import Exam
from exams.permissions import user_can_manage_exam


def user_can_review_exam(*, user: User, exam: Exam) -> bool:
    """Instructors review their own exams; platform admins review every exam; nobody else reviews anything: who
    manages an exam (exams.permissions)."""
    return user_can_manage_exam(user=user, exam=exam)


def user_can_view_evidence(*, user: Any, exam_owner_id: int) -> bool:
    """Evidence is for the exam's owning instructor and platform admins; nobody else, not even the student
    (a student sees confirmed flags through the review pages, not raw snapshots)."""
    if not user.is_authenticated:
        return False
    return bool(user.is_superuser or getattr(user, "is_platform_admin", False) or user.pk == exam_owner_id)


def user_can_verify(*, actor: User, student: User) -> bool:
    """Who enrolled (issue 11): admins verify anyone; an instructor, the students enrolled in (or sitting) one of
    their exams."""
    if not actor.is_authenticated or not actor.is_active:
        return False
    if actor.is_platform_admin:
        return True
    return actor.is_instructor and students_of(actor).filter(pk=student.pk).exists()


def students_of(actor: User) -> QuerySet[User]:
    """The students whose enrolments `actor` may see and decide on."""
    students = User.objects.filter(role=User.Role.STUDENT)
    if actor.is_platform_admin:
        return students
    mine = Q(enrollments__exam__owner=actor) | Q(attempts__exam__owner=actor)
    return students.filter(pk__in=User.objects.filter(mine).values("pk"))
