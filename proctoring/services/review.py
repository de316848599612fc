"""Human review of flags: confirm, dismiss or reopen with a note; the student's one response per confirmed flag; the
instructor's message to a student during the exam.

Every decision adds a FlagDecision row (the audit trail), in the same transaction as the status change, so there is
never a decision without its record or a record without its decision. Views, the admin actions and the live monitor
all call these functions; none of them writes review state by itself.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from accounts.models import User
from exams.models import Attempt
from exams.signals import integrity_flag_confirmed
from proctoring.models import Flag, FlagDecision, FlagResponse, FlagWithdrawal, InstructorMessage
from proctoring.permissions import user_can_review_exam

NOTE_MAX = 2000
RESPONSE_MAX = 2000
MESSAGE_MAX = 500


class ReviewError(ValueError):
    """A review request that cannot be honoured; `message` is safe to show to the person who asked."""

    def __init__(self, message: str, *, code: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


_DECISIONS: dict[str, tuple[str, str]] = {
    FlagDecision.Action.CONFIRM: (FlagDecision.Action.CONFIRM, Flag.Status.CONFIRMED),
    FlagDecision.Action.DISMISS: (FlagDecision.Action.DISMISS, Flag.Status.DISMISSED),
    FlagDecision.Action.REOPEN: (FlagDecision.Action.REOPEN, Flag.Status.OPEN),
}


def flag_review(*, flag_id: int, actor: User, decision: str, note: str = "") -> Flag:
    """Confirm, dismiss or reopen one flag, with an optional note, and record the decision.

    1. Lock the flag row, so two reviewers deciding at once are serialised and both decisions are in the trail.
    2. Check the actor may review this exam (the views check too; the admin actions and any script rely on this).
    3. Change the status and add the audit row in one transaction.
    A withdrawn flag (a re-scoring no longer raises it) is refused: it is not in front of the reviewer any more.
    """
    if decision not in _DECISIONS:
        raise ReviewError(f"Unknown decision {decision!r}: use confirm, dismiss or reopen.", code="bad_decision")
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ReviewError(f"The note is too long ({len(note)} characters; at most {NOTE_MAX}).", code="note_too_long")
    action, status = _DECISIONS[decision]
    with transaction.atomic():
        flag = (
            Flag.objects.select_for_update(of=("self",))
            .select_related("session__attempt__exam")
            .filter(pk=flag_id)
            .first()
        )
        if flag is None:
            raise ReviewError("No such flag.", code="not_found")
        if not user_can_review_exam(user=actor, exam=flag.session.attempt.exam):
            raise ReviewError("You can only review flags of your own exams.", code="forbidden")
        if FlagWithdrawal.objects.filter(flag=flag).exists():
            raise ReviewError(
                "This flag was withdrawn by re-scoring; restore the settings to review it.", code="withdrawn"
            )
        previous = flag.status
        if previous == status and not note:
            # Re-submitting the same decision without a new note changes nothing; don't clutter the trail.
            return flag
        flag.status = status
        flag.save(update_fields=["status"])
        FlagDecision.objects.create(
            flag=flag,
            flag_ref=flag.pk,
            attempt_id=flag.session.attempt_id,
            actor=actor,
            action=action,
            from_status=previous,
            to_status=status,
            note=note,
        )
        if status == Flag.Status.CONFIRMED and previous != status:
            attempt = flag.session.attempt
            transaction.on_commit(
                lambda: integrity_flag_confirmed.send_robust(
                    sender=Attempt,
                    attempt=attempt,
                    kind=flag.kind,
                    at=flag.started_at,
                    confidence=flag.confidence,
                    note=note,
                ),
                robust=True,
            )
    return flag


def flags_review_bulk(*, flag_ids: list[int], actor: User, decision: str, note: str = "") -> int:
    """The same decision on several flags (admin actions). All or nothing: one refused flag refuses the batch."""
    with transaction.atomic():
        for flag_id in flag_ids:
            flag_review(flag_id=flag_id, actor=actor, decision=decision, note=note)
    return len(flag_ids)


def flag_response_create(*, flag_id: int, student: User, text: str) -> FlagResponse:
    """A student's response to a confirmed flag on their own attempt. One per flag: it cannot be edited afterwards,
    so the instructor reads what the student actually sent."""
    text = (text or "").strip()
    if not text:
        raise ReviewError("Please write your response before sending it.", code="empty")
    if len(text) > RESPONSE_MAX:
        raise ReviewError(
            f"Your response is too long ({len(text)} characters; at most {RESPONSE_MAX}).", code="too_long"
        )
    flag = Flag.objects.select_related("session__attempt").filter(pk=flag_id).first()
    # The same answer for "no such flag", "not yours" and "not confirmed": a student learns nothing about flags
    # they are not entitled to see.
    if flag is None or flag.session.attempt.student_id != student.pk or flag.status != Flag.Status.CONFIRMED:
        raise ReviewError("There is no confirmed flag to respond to here.", code="not_found")
    try:
        with transaction.atomic():
            return FlagResponse.objects.create(flag=flag, student=student, text=text)
    except IntegrityError:
        raise ReviewError("You have already responded to this flag.", code="duplicate") from None


def instructor_message_create(
    *, attempt_id: int, sender: User, text: str, exam_id: int | None = None
) -> InstructorMessage:
    """Record a message to the student of an in-progress attempt. The caller delivers it (channel group
    `proctor_attempt_<id>`) after this returns, so a message is on record before the student can see it."""
    text = " ".join((text or "").split())
    if not text:
        raise ReviewError("Write a message first.", code="empty")
    if len(text) > MESSAGE_MAX:
        raise ReviewError(f"The message is too long ({len(text)} characters; at most {MESSAGE_MAX}).", code="too_long")
    attempt = Attempt.objects.select_related("exam").filter(pk=attempt_id).first()
    if attempt is None or (exam_id is not None and attempt.exam_id != exam_id):
        raise ReviewError("No such attempt in this exam.", code="not_found")
    if not user_can_review_exam(user=sender, exam=attempt.exam):
        raise ReviewError("No such attempt in your exams.", code="not_found")
    if attempt.status != Attempt.Status.IN_PROGRESS:
        raise ReviewError("This student has finished the exam; the message was not sent.", code="finished")
    return InstructorMessage.objects.create(attempt=attempt, sender=sender, text=text)
