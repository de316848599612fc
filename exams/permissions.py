"""Who may do what with exams: one module, so that services, selectors and views ask the same questions the same way
(issue 10). Reads only. Proctoring's and review's questions are in proctoring/permissions.py, built on these."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from exams.models import Exam


def user_is_admin(*, user: Any) -> bool:
    """A platform admin (the Django admin, the LTI set-up, every exam)."""
    return bool(getattr(user, "is_authenticated", False) and user.is_active and user.is_platform_admin)


def user_can_manage_exams(*, user: Any) -> bool:
    """Instructors manage exams (their own), and platform admins (all of them); students and anonymous users none."""
    return bool(
        getattr(user, "is_authenticated", False) and user.is_active and (user.is_instructor or user.is_platform_admin)
    )


def user_can_manage_exam(*, user: Any, exam: Exam) -> bool:
    """The exam's owner and platform admins: edit, grade, link to a course, see its LMS page."""
    return user_can_manage_exams(user=user) and (user.is_platform_admin or exam.owner_id == user.pk)


def exams_managed_by(*, user: Any) -> QuerySet[Exam]:
    """The exams a person may manage (and review): instructors their own, platform admins all, everyone else none."""
    exams = Exam.objects.select_related("owner")
    if not user_can_manage_exams(user=user):
        return exams.none()
    return exams if user.is_platform_admin else exams.filter(owner=user)
