"""Human review of flags: confirm, dismiss or reopen with a note; the student's one response per confirmed flag.

Every decision adds a FlagDecision row (the audit trail), in the same transaction as the status change, so there is
never a decision without its record or a record without its decision. Views, the admin actions and the live monitor
all call these functions; none of them writes review state by itself.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from accounts.models import User
from exams.models import Attempt
from exams.signals import integrity_flag_confirmed
from proctoring.decisions import ReviewError, decision_note
from proctoring.models import Flag
from proctoring.permissions import user_can_review_exam
from proctoring.review.models import FlagDecision, FlagResponse, FlagWithdrawal

RESPONSE_MAX = 2000


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
    note = decision_note(note)
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
