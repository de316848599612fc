from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from exams import services
from exams.exceptions import ExamClosed, ExamNotOpen, ExamNotPublished, NoAttemptsLeft, NotEnrolled
from exams.models import Attempt, Enrollment


def test_it_starts_an_attempt_for_an_enrolled_student_inside_the_window(paper, alice):
    now = timezone.now()
    attempt = services.attempt_start(exam=paper.exam, student=alice, now=now)
    assert attempt.status == Attempt.Status.IN_PROGRESS
    assert attempt.number == 1
    assert attempt.started_at == now
    assert attempt.deadline == now + timedelta(minutes=30)
    assert attempt.max_score == 6


def test_it_refuses_before_the_exam_opens(paper, alice):
    with pytest.raises(ExamNotOpen, match="opens on"):
        services.attempt_start(exam=paper.exam, student=alice, now=paper.exam.opens_at - timedelta(seconds=1))


def test_it_refuses_once_the_exam_has_closed(paper, alice):
    with pytest.raises(ExamClosed):
        services.attempt_start(exam=paper.exam, student=alice, now=paper.exam.closes_at)


def test_it_refuses_an_unpublished_exam(paper, alice):
    paper.exam.published = False
    paper.exam.save()
    with pytest.raises(ExamNotPublished):
        services.attempt_start(exam=paper.exam, student=alice)


def test_it_refuses_a_student_who_is_not_enrolled(paper, bob):
    with pytest.raises(NotEnrolled):
        services.attempt_start(exam=paper.exam, student=bob)
    assert not Attempt.objects.filter(student=bob).exists()


def test_it_resumes_the_open_attempt_instead_of_starting_a_second(paper, alice):
    first = services.attempt_start(exam=paper.exam, student=alice)
    again = services.attempt_start(exam=paper.exam, student=alice, now=timezone.now() + timedelta(minutes=5))
    assert again.pk == first.pk
    assert again.deadline == first.deadline
    assert Attempt.objects.filter(student=alice).count() == 1


def test_it_refuses_a_second_attempt_when_only_one_is_allowed(paper, alice):
    attempt = services.attempt_start(exam=paper.exam, student=alice)
    services.attempt_submit(attempt=attempt)
    with pytest.raises(NoAttemptsLeft):
        services.attempt_start(exam=paper.exam, student=alice)


def test_it_allows_another_attempt_when_the_exam_allows_more(paper, alice):
    paper.exam.max_attempts = 2
    paper.exam.save()
    first = services.attempt_submit(attempt=services.attempt_start(exam=paper.exam, student=alice))
    second = services.attempt_start(exam=paper.exam, student=alice)
    assert second.pk != first.pk
    assert second.number == 2
    services.attempt_submit(attempt=second)
    with pytest.raises(NoAttemptsLeft):
        services.attempt_start(exam=paper.exam, student=alice)


def test_the_deadline_adds_the_students_extra_minutes(paper, alice):
    Enrollment.objects.filter(student=alice).update(extra_minutes=15)
    now = timezone.now()
    attempt = services.attempt_start(exam=paper.exam, student=alice, now=now)
    assert attempt.deadline == now + timedelta(minutes=45)


def test_the_deadline_never_passes_the_exams_closing_time(paper, alice):
    start = paper.exam.closes_at - timedelta(minutes=10)
    attempt = services.attempt_start(exam=paper.exam, student=alice, now=start)
    assert attempt.deadline == paper.exam.closes_at


def test_starting_after_an_attempt_ran_out_of_time_expires_it_first(paper, alice):
    paper.exam.max_attempts = 2
    paper.exam.save()
    first = services.attempt_start(exam=paper.exam, student=alice)
    later = first.deadline + timedelta(minutes=1)
    second = services.attempt_start(exam=paper.exam, student=alice, now=later)
    first.refresh_from_db()
    assert first.status == Attempt.Status.EXPIRED
    assert second.number == 2 and second.status == Attempt.Status.IN_PROGRESS


def test_an_overdue_attempt_counts_against_the_attempts_allowed(paper, alice):
    first = services.attempt_start(exam=paper.exam, student=alice)
    with pytest.raises(NoAttemptsLeft):
        services.attempt_start(exam=paper.exam, student=alice, now=first.deadline + timedelta(minutes=1))
    first.refresh_from_db()
    assert first.status == Attempt.Status.EXPIRED
