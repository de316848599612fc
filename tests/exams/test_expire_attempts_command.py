"""`manage.py expire_attempts`: the periodic job that closes attempts nobody touches after their deadline."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from exams import services
from exams.models import Attempt
from proctoring.models import ProctoringSession
from tests.factories import EnrollmentFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_expires_only_overdue_attempts_grades_them_and_ends_their_sessions(paper, alice, bob):
    EnrollmentFactory(exam=paper.exam, student=bob)
    overdue = services.attempt_start(exam=paper.exam, student=alice)
    running = services.attempt_start(exam=paper.exam, student=bob)
    session = ProctoringSession.objects.create(attempt=overdue, started_at=timezone.now())
    Attempt.objects.filter(pk=overdue.pk).update(deadline=timezone.now() - timedelta(minutes=5))

    out = StringIO()
    call_command("expire_attempts", stdout=out)

    assert out.getvalue().strip() == "Expired 1 overdue attempt."
    overdue.refresh_from_db()
    running.refresh_from_db()
    session.refresh_from_db()
    assert overdue.status == Attempt.Status.EXPIRED and overdue.score is not None
    assert running.status == Attempt.Status.IN_PROGRESS
    assert (session.status, session.end_reason) == (ProctoringSession.Status.ENDED, "attempt_closed")

    again = StringIO()
    call_command("expire_attempts", stdout=again)
    assert again.getvalue().strip() == "Expired 0 overdue attempts."
