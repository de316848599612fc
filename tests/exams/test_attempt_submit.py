from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from exams import services
from exams.models import Answer, Attempt


@pytest.fixture
def attempt(paper, alice) -> Attempt:
    return services.attempt_start(exam=paper.exam, student=alice)


def test_submitting_grades_the_choice_questions(paper, attempt):
    services.answer_save(attempt=attempt, question=paper.single, choice_ids=[paper.single_right.id])
    services.answer_save(attempt=attempt, question=paper.multiple, choice_ids=[c.id for c in paper.multiple_right])
    attempt = services.attempt_submit(attempt=attempt)
    assert attempt.status == Attempt.Status.SUBMITTED
    assert attempt.submitted_at is not None
    assert attempt.score == 3
    assert attempt.max_score == 6
    # The unanswered short answer is blank, so there is nothing left to grade by hand.
    assert attempt.fully_graded is True


def test_submitting_twice_changes_nothing(paper, attempt):
    services.answer_save(attempt=attempt, question=paper.single, choice_ids=[paper.single_right.id])
    first = services.attempt_submit(attempt=attempt)
    second = services.attempt_submit(attempt=attempt, now=timezone.now() + timedelta(minutes=3))
    assert second.pk == first.pk
    assert second.status == Attempt.Status.SUBMITTED
    assert second.submitted_at == first.submitted_at
    assert second.score == first.score == 1


def test_a_wrong_single_choice_scores_nothing(paper, attempt):
    services.answer_save(attempt=attempt, question=paper.single, choice_ids=[paper.single_wrong.id])
    assert services.attempt_submit(attempt=attempt).score == 0


def test_multiple_choice_needs_exactly_the_correct_set(paper, attempt):
    right_a, right_b = paper.multiple_right
    services.answer_save(attempt=attempt, question=paper.multiple, choice_ids=[right_a.id])
    assert services.attempt_submit(attempt=attempt).score == 0


def test_multiple_choice_with_an_extra_wrong_box_scores_nothing(paper, alice):
    paper.exam.max_attempts = 3
    paper.exam.save()
    attempt = services.attempt_start(exam=paper.exam, student=alice)
    everything = [c.id for c in paper.multiple_right] + [paper.multiple_wrong.id]
    services.answer_save(attempt=attempt, question=paper.multiple, choice_ids=everything)
    assert services.attempt_submit(attempt=attempt).score == 0
    answer = Answer.objects.get(attempt=attempt, question=paper.multiple)
    assert answer.points_awarded == 0


def test_a_written_answer_waits_for_manual_grading(paper, attempt):
    services.answer_save(attempt=attempt, question=paper.single, choice_ids=[paper.single_right.id])
    services.answer_save(attempt=attempt, question=paper.short, text="Light scatters.")
    attempt = services.attempt_submit(attempt=attempt)
    assert attempt.score == 1
    assert attempt.fully_graded is False
    assert Answer.objects.get(question=paper.short).points_awarded is None


def test_a_submit_after_the_deadline_expires_the_attempt_with_what_was_saved(paper, attempt):
    services.answer_save(attempt=attempt, question=paper.single, choice_ids=[paper.single_right.id])
    attempt = services.attempt_submit(attempt=attempt, now=attempt.deadline + timedelta(minutes=2))
    assert attempt.status == Attempt.Status.EXPIRED
    assert attempt.submitted_at == attempt.deadline
    assert attempt.score == 1


def test_expire_leaves_an_attempt_that_still_has_time_alone(paper, attempt):
    attempt = services.attempt_expire(attempt=attempt)
    assert attempt.status == Attempt.Status.IN_PROGRESS
    assert attempt.score is None


def test_expire_closes_and_grades_an_overdue_attempt(paper, attempt):
    services.answer_save(attempt=attempt, question=paper.multiple, choice_ids=[c.id for c in paper.multiple_right])
    attempt = services.attempt_expire(attempt=attempt, now=attempt.deadline + timedelta(seconds=30))
    assert attempt.status == Attempt.Status.EXPIRED
    assert attempt.score == 2


def test_the_sweep_expires_only_overdue_attempts(paper, alice, bob):
    from tests.factories import EnrollmentFactory

    EnrollmentFactory(exam=paper.exam, student=bob)
    early = services.attempt_start(exam=paper.exam, student=alice)
    late = services.attempt_start(exam=paper.exam, student=bob, now=timezone.now() + timedelta(minutes=20))
    assert services.attempts_expire_overdue(now=early.deadline + timedelta(minutes=1)) == 1
    early.refresh_from_db()
    late.refresh_from_db()
    assert early.status == Attempt.Status.EXPIRED
    assert late.status == Attempt.Status.IN_PROGRESS
