"""Review's own records: every human decision on a flag (the audit trail), re-scoring runs and the flags they
withdrew, and students' responses to confirmed flags.

These models were proctoring's until issue 10 made review an app of its own. Their tables keep the names they had
(`db_table`), so moving them changed Django's state only, never a row (migrations/0001_initial.py).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from proctoring.models import Flag


class RescoreRun(models.Model):
    """One application of new sensitivity to an exam's stored observations: who, the settings before and after, and
    what changed per attempt. The audit record behind every flag a re-scoring created, moved or withdrew."""

    exam = models.ForeignKey("exams.Exam", on_delete=models.CASCADE, related_name="rescore_runs")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    settings_before = models.JSONField(default=dict, blank=True)
    settings_after = models.JSONField(default=dict, blank=True)
    # {"attempts": {attempt_id: {"before": {kind: n}, "after": {kind: n}}}, "conflicts": [...]}
    summary = models.JSONField(default=dict, blank=True)
    applied_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "proctoring_rescorerun"
        ordering = ["-applied_at", "-id"]

    def __str__(self) -> str:
        return f"Re-scoring {self.pk} of exam {self.exam_id}"


class FlagWithdrawal(models.Model):
    """An open flag that a re-scoring no longer raises. Kept (with its snapshots) rather than deleted, so that
    going back to the old settings restores it with its evidence; withdrawn flags are left out of counts."""

    flag = models.OneToOneField(Flag, on_delete=models.CASCADE, related_name="withdrawal")
    run = models.ForeignKey(RescoreRun, on_delete=models.CASCADE, related_name="withdrawals")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "proctoring_flagwithdrawal"

    def __str__(self) -> str:
        return f"Flag {self.flag_id} withdrawn by re-scoring {self.run_id}"


class FlagDecision(models.Model):
    """Audit log of review: every confirm, dismiss and reopen, and every change a re-scoring made to a flag.

    Rows are only ever added. The flag reference survives the flag (retention purge), so the trail does too.
    """

    class Action(models.TextChoices):
        CONFIRM = "confirm", "Confirmed"
        DISMISS = "dismiss", "Dismissed"
        REOPEN = "reopen", "Reopened"
        RESCORE_CREATE = "rescore_create", "Raised by re-scoring"
        RESCORE_UPDATE = "rescore_update", "Updated by re-scoring"
        RESCORE_WITHDRAW = "rescore_withdraw", "Withdrawn by re-scoring"
        RESCORE_RESTORE = "rescore_restore", "Restored by re-scoring"

    flag = models.ForeignKey(Flag, null=True, on_delete=models.SET_NULL, related_name="decisions")
    flag_ref = models.PositiveBigIntegerField()
    attempt_id = models.PositiveBigIntegerField(null=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="flag_decisions")
    action = models.CharField(max_length=32, choices=Action.choices)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    note = models.TextField(blank=True)
    run = models.ForeignKey(RescoreRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions")
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "proctoring_flagdecision"
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} flag {self.flag_ref}"


class FlagResponse(models.Model):
    """A student's answer to a confirmed flag on their own attempt: one per flag, shown to the instructor beside it."""

    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="responses")
    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="flag_responses")
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "proctoring_flagresponse"
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["flag", "student"], name="one_response_per_flag_and_student")]

    def __str__(self) -> str:
        return f"Response of {self.student} to flag {self.flag_id}"
