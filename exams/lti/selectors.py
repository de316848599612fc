"""Reads for LTI: the tool's public keys, an exam's course links and grades, a student's proctoring hand-over."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from lti_tool.models import Key, LtiRegistration

from accounts.models import User
from exams.lti.models import ExamLink, GradeSend, ProctoringHandover
from exams.models import Exam


def tool_jwks() -> dict[str, Any]:
    """The tool's public keys as a JWK set (every key kept, so that a rotated one still verifies)."""
    jwks: dict[str, Any] = Key.objects.as_jwks()
    return jwks


def exam_links(*, exam: Exam) -> QuerySet[ExamLink]:
    return ExamLink.objects.filter(exam=exam).select_related("resource_link__context")


def exam_link(*, exam: Exam, link_id: object) -> ExamLink | None:
    """One of the exam's course links, by an id as posted (anything that is not a whole number finds none)."""
    try:
        pk = int(str(link_id))
    except ValueError:
        return None
    return ExamLink.objects.filter(exam=exam, pk=pk).first()


def exam_grades(*, exam: Exam) -> QuerySet[GradeSend]:
    """Every grade sent, waiting or failing for the exam's attempts, newest first."""
    return GradeSend.objects.filter(link__exam=exam).select_related("attempt__student").order_by("-updated_at")


def handover_of(*, user: User, handover_id: int) -> ProctoringHandover | None:
    """A proctoring hand-over of this user; None for anyone else's."""
    return ProctoringHandover.objects.select_related("link__exam").filter(pk=handover_id, user=user).first()


def registrations() -> list[tuple[LtiRegistration, list[tuple[str, bool]]]]:
    """Every registered platform with its deployments (id, active), by name: what the set-up page lists."""
    return [
        (registration, [(d.deployment_id, d.is_active) for d in registration.deployments.all()])
        for registration in LtiRegistration.objects.order_by("name").prefetch_related("deployments")
    ]
