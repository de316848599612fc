from __future__ import annotations

from datetime import timedelta

import pytest

from exams import services
from exams.exceptions import AttemptClosed, DeadlinePassed, InvalidAnswer
from exams.models import Answer, Attempt
from tests.factories import ChoiceFactory, QuestionFactory


@pytest.fixture
def attempt(paper, alice) -> Attempt:
    return services.attempt_start(exam=paper.exam, student=alice)


def test_it_saves_a_single_choice(paper, attempt):
    answer = services.answer_save(attempt=attempt, question=paper.single, choice_ids=[paper.single_right.id])
    assert list(answer.selected_choices.all()) == [paper.single_right]


def test_saving_again_replaces_the_answer_instead_of_adding_one(paper, attempt):
    services.answer_save(attempt=attempt, question=paper.single, choice_ids=[paper.single_right.id])
    services.answer_save(attempt=attempt, question=paper.single, choice_ids=[str(paper.single_wrong.id)])
    answer = Answer.objects.get(attempt=attempt, question=paper.single)
    assert list(answer.selected_choices.all()) == [paper.single_wrong]
    assert Answer.objects.filter(attempt=attempt).count() == 1


def test_it_saves_several_choices_and_a_written_answer(paper, attempt):
    right_a, right_b = paper.multiple_right
    services.answer_save(attempt=attempt, question=paper.multiple, choice_ids=[right_a.id, right_b.id])
    services.answer_save(attempt=attempt, question=paper.short, text="Rayleigh scattering.")
    assert set(Answer.objects.get(question=paper.multiple).selected_choices.all()) == {right_a, right_b}
    assert Answer.objects.get(question=paper.short).text == "Rayleigh scattering."


def test_a_single_choice_question_takes_one_choice_only(paper, attempt):
    with pytest.raises(InvalidAnswer, match="one answer"):
        services.answer_save(
            attempt=attempt, question=paper.single, choice_ids=[paper.single_right.id, paper.single_wrong.id]
        )


def test_it_refuses_a_choice_from_another_question(paper, attempt):
    with pytest.raises(InvalidAnswer):
        services.answer_save(attempt=attempt, question=paper.single, choice_ids=[paper.multiple_wrong.id])
    assert not Answer.objects.exists()


def test_it_refuses_a_choice_id_that_is_not_a_number(paper, attempt):
    with pytest.raises(InvalidAnswer):
        services.answer_save(attempt=attempt, question=paper.single, choice_ids=["mercury"])


def test_it_refuses_a_question_from_another_exam(paper, attempt):
    stranger = QuestionFactory()
    choice = ChoiceFactory(question=stranger, is_correct=True)
    with pytest.raises(InvalidAnswer, match="isn't part of this exam"):
        services.answer_save(attempt=attempt, question=stranger, choice_ids=[choice.id])


def test_it_refuses_a_choice_for_a_written_question(paper, attempt):
    with pytest.raises(InvalidAnswer):
        services.answer_save(attempt=attempt, question=paper.short, choice_ids=[paper.single_right.id])


def test_it_refuses_an_answer_after_the_deadline_and_expires_the_attempt(paper, attempt):
    services.answer_save(attempt=attempt, question=paper.single, choice_ids=[paper.single_right.id])
    too_late = attempt.deadline + timedelta(minutes=1)
    with pytest.raises(DeadlinePassed):
        services.answer_save(attempt=attempt, question=paper.short, text="late", now=too_late)
    attempt.refresh_from_db()
    assert attempt.status == Attempt.Status.EXPIRED
    assert attempt.score == 1  # the answer saved in time still counts
    assert not Answer.objects.filter(question=paper.short).exists()


def test_an_answer_in_flight_at_the_deadline_is_accepted_within_the_grace(paper, attempt):
    just_after = attempt.deadline + services.DEADLINE_GRACE - timedelta(seconds=1)
    services.answer_save(attempt=attempt, question=paper.short, text="just in time", now=just_after)
    assert Answer.objects.get(question=paper.short).text == "just in time"


def test_it_refuses_an_answer_once_the_attempt_is_submitted(paper, attempt):
    services.attempt_submit(attempt=attempt)
    with pytest.raises(AttemptClosed):
        services.answer_save(attempt=attempt, question=paper.short, text="after")


def test_it_refuses_an_overlong_written_answer(paper, attempt):
    with pytest.raises(InvalidAnswer, match="at most"):
        services.answer_save(attempt=attempt, question=paper.short, text="x" * (services.MAX_ANSWER_CHARS + 1))
