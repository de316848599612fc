"""One answer to "is this attempt still live?" (issue 10): Attempt.is_live, with the deadline grace, for the exam
pages, the expiry and the proctoring session alike."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from exams import services
from exams.models import DEADLINE_GRACE, Attempt
from proctoring.services.sessions import NOT_IN_PROGRESS, SessionRefused, session_open
from tests.factories import ExamFactory, StudentFactory, proctoring_ready

pytestmark = pytest.mark.django_db


@pytest.fixture
def attempt():
    student = proctoring_ready(StudentFactory())
    now = timezone.now()
    return Attempt.objects.create(
        exam=ExamFactory(published=True), student=student, started_at=now - timedelta(minutes=59), deadline=now
    )


@pytest.mark.parametrize(("after_deadline", "live"), [(-60, True), (0, True), (4, True), (6, False)])
def test_everyone_agrees_on_the_deadline_with_its_grace(attempt, after_deadline, live):
    now = attempt.deadline + timedelta(seconds=after_deadline)
    assert DEADLINE_GRACE == timedelta(seconds=5)
    assert attempt.is_live(now) is live
    assert services.attempt_is_overdue(attempt=attempt, now=now) is (not live)


def test_a_proctoring_session_opens_inside_the_grace_and_not_after_it(attempt, monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: attempt.deadline + timedelta(seconds=3))
    assert session_open(attempt_id=attempt.pk, user=attempt.student).attempt_id == attempt.pk
    monkeypatch.setattr(timezone, "now", lambda: attempt.deadline + timedelta(seconds=6))
    with pytest.raises(SessionRefused) as refused:
        session_open(attempt_id=attempt.pk, user=attempt.student)
    assert refused.value.code == NOT_IN_PROGRESS


def test_a_submitted_attempt_is_not_live_whatever_the_time(attempt):
    attempt.status = Attempt.Status.SUBMITTED
    assert not attempt.is_live(attempt.deadline - timedelta(minutes=30))
