from __future__ import annotations

from decimal import Decimal

import pytest

from exams import services
from exams.exceptions import InvalidGrade, NotAllowed
from exams.models import Answer, Attempt
from tests.factories import InstructorFactory


@pytest.fixture
def written(paper, alice) -> Answer:
    """alice answers everything, the single choice correctly, and submits."""
    attempt = services.attempt_start(exam=paper.exam, student=alice)
    services.answer_save(attempt=attempt, question=paper.single, choice_ids=[paper.single_right.id])
    answer = services.answer_save(attempt=attempt, question=paper.short, text="Blue light scatters more.")
    services.attempt_submit(attempt=attempt)
    return answer


def test_grading_a_written_answer_adds_its_points_and_completes_the_grading(paper, ivan, written):
    services.answer_grade(answer=written, grader=ivan, points="2.5", feedback="Good, but say why.")
    written.refresh_from_db()
    attempt = Attempt.objects.get(pk=written.attempt_id)
    assert written.points_awarded == Decimal("2.50")
    assert written.graded_by == ivan
    assert written.feedback == "Good, but say why."
    assert attempt.score == Decimal("3.50")
    assert attempt.fully_graded is True


def test_regrading_replaces_the_earlier_grade(paper, ivan, written):
    services.answer_grade(answer=written, grader=ivan, points=3)
    services.answer_grade(answer=written, grader=ivan, points=0)
    assert Attempt.objects.get(pk=written.attempt_id).score == 1


@pytest.mark.parametrize("points", ["-1", "3.01", "lots", "NaN"])
def test_points_must_lie_between_zero_and_the_questions_points(paper, ivan, written, points):
    with pytest.raises(InvalidGrade):
        services.answer_grade(answer=written, grader=ivan, points=points)
    written.refresh_from_db()
    assert written.points_awarded is None


def test_choice_questions_cannot_be_graded_by_hand(paper, ivan, written):
    choice_answer = Answer.objects.get(attempt_id=written.attempt_id, question=paper.single)
    with pytest.raises(InvalidGrade, match="automatically"):
        services.answer_grade(answer=choice_answer, grader=ivan, points=0)


def test_an_attempt_in_progress_cannot_be_graded(paper, ivan, alice):
    attempt = services.attempt_start(exam=paper.exam, student=alice)
    answer = services.answer_save(attempt=attempt, question=paper.short, text="Thinking…")
    with pytest.raises(InvalidGrade, match="in progress"):
        services.answer_grade(answer=answer, grader=ivan, points=1)


def test_another_instructor_cannot_grade(paper, written):
    charlie = InstructorFactory(username="charlie")
    with pytest.raises(NotAllowed):
        services.answer_grade(answer=written, grader=charlie, points=1)
