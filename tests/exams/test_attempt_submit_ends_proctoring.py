"""Submitting or expiring an attempt ends its proctoring session once the attempt's closing commits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from exams import services
from exams.models import Attempt
from proctoring.models import ProctoringSession, StreamEvent


@pytest.fixture
def attempt(paper, alice) -> Attempt:
    return services.attempt_start(exam=paper.exam, student=alice)


@pytest.fixture
def session(attempt) -> ProctoringSession:
    return ProctoringSession.objects.create(attempt=attempt, started_at=timezone.now())


def test_submitting_ends_alices_session_with_attempt_closed(attempt, session, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.attempt_submit(attempt=attempt)
    session.refresh_from_db()
    assert session.status == ProctoringSession.Status.ENDED
    assert session.end_reason == "attempt_closed"
    assert StreamEvent.objects.filter(session=session, kind=StreamEvent.Kind.ENDED).count() == 1


def test_the_session_stays_active_until_the_submission_commits(attempt, session, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.attempt_submit(attempt=attempt)
        session.refresh_from_db()
        assert session.status == ProctoringSession.Status.ACTIVE
    # One end of the session, and the graded signal (the LMS grade book listens), both waiting for the commit.
    assert [c.__qualname__.split(".")[0] for c in callbacks] == ["_closed_on_commit", "_graded_on_commit"]


def test_a_second_submit_ends_nothing_more(attempt, session, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = services.attempt_submit(attempt=attempt)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        second = services.attempt_submit(attempt=attempt, now=timezone.now() + timedelta(minutes=3))
    assert callbacks == []
    assert second.status == Attempt.Status.SUBMITTED
    assert second.submitted_at == first.submitted_at
    assert StreamEvent.objects.filter(session=session, kind=StreamEvent.Kind.ENDED).count() == 1


def test_submitting_without_any_proctoring_session_works(attempt, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        submitted = services.attempt_submit(attempt=attempt)
    assert submitted.status == Attempt.Status.SUBMITTED
    assert not ProctoringSession.objects.exists()


def test_an_overdue_attempt_expires_and_its_session_ends(attempt, session, django_capture_on_commit_callbacks):
    later = attempt.deadline + timedelta(minutes=10)
    with django_capture_on_commit_callbacks(execute=True):
        expired = services.attempt_expire(attempt=attempt, now=later)
    assert expired.status == Attempt.Status.EXPIRED
    session.refresh_from_db()
    assert (session.status, session.end_reason) == (ProctoringSession.Status.ENDED, "attempt_closed")


def test_a_late_submit_expires_the_attempt_and_ends_the_session_once(
    attempt, session, django_capture_on_commit_callbacks
):
    later = attempt.deadline + timedelta(minutes=10)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.attempt_submit(attempt=attempt, now=later)
    # attempt_submit hands over to attempt_expire, which asks for the end once; the end then notifies the socket.
    assert StreamEvent.objects.filter(session=session, kind=StreamEvent.Kind.ENDED).count() == 1
    names = [c.__qualname__.split(".")[0] for c in callbacks]
    assert names == ["_closed_on_commit", "_graded_on_commit", "session_end_for_attempt"]


def test_a_rolled_back_submission_leaves_the_session_running(attempt, session, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            services.attempt_submit(attempt=attempt)
            raise RuntimeError("the request failed after the submit")
    assert callbacks == []
    session.refresh_from_db()
    assert session.status == ProctoringSession.Status.ACTIVE


def test_an_earlier_session_of_alice_is_left_as_it_ended(attempt, session, django_capture_on_commit_callbacks):
    session.status, session.end_reason, session.ended_at = ProctoringSession.Status.ENDED, "client_end", timezone.now()
    session.save()
    with django_capture_on_commit_callbacks(execute=True):
        services.attempt_submit(attempt=attempt)
    session.refresh_from_db()
    assert session.end_reason == "client_end"
