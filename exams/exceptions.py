"""Rule violations raised by exams.services.

Every error carries a calm `message` that a view can show as it is, and a short `code` for JSON clients (the exam
page's autosave reads it to decide whether to retry or to lock the page).
"""

from __future__ import annotations


class ExamRuleError(Exception):
    code = "rule"
    default_message = "That isn't possible right now."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class ExamNotPublished(ExamRuleError):
    code = "not_published"
    default_message = "This exam isn't available yet."


class ExamNotOpen(ExamRuleError):
    code = "not_open"
    default_message = "This exam hasn't opened yet."


class ExamClosed(ExamRuleError):
    code = "closed"
    default_message = "This exam has closed."


class NotEnrolled(ExamRuleError):
    code = "not_enrolled"
    default_message = "You aren't enrolled in this exam. If you think you should be, please contact your instructor."


class NoAttemptsLeft(ExamRuleError):
    code = "no_attempts_left"
    default_message = "You have used all the attempts this exam allows."


class AttemptClosed(ExamRuleError):
    """The attempt was already submitted or expired: nothing in it can change."""

    code = "attempt_closed"
    default_message = "This attempt has already been submitted, so answers can no longer change."


class DeadlinePassed(ExamRuleError):
    code = "deadline"
    default_message = "Time is up for this attempt. Your answers saved before the deadline have been submitted."


class InvalidAnswer(ExamRuleError):
    code = "invalid_answer"
    default_message = "That answer couldn't be saved."


class InvalidGrade(ExamRuleError):
    code = "invalid_grade"
    default_message = "That grade couldn't be saved."


class InvalidExam(ExamRuleError):
    code = "invalid_exam"
    default_message = "The exam isn't valid."


class ExamLocked(ExamRuleError):
    code = "locked"
    default_message = (
        "Questions can't change once students have started this exam, so that every attempt is graded against the "
        "same questions."
    )


class NotAllowed(ExamRuleError):
    code = "not_allowed"
    default_message = "You aren't allowed to do that."
