"""What the tool keeps of an LMS beyond django-lti's records: which exam a resource link opens, each grade sent
back, and each proctoring hand-over (LTI Proctoring Services)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from exams.models import Attempt, Exam


class ExamLink(models.Model):
    """An LMS resource link (one placement of this tool in a course) and the exam it opens. Made by an instructor
    on their first launch of the link, or by Deep Linking. `lineitem_url` is the grade book column the link's
    launches name (Assignment and Grade Services), when the platform offers one."""

    resource_link = models.OneToOneField("lti_tool.LtiResourceLink", on_delete=models.CASCADE, related_name="exam_link")
    exam = models.ForeignKey(Exam, on_delete=models.CASCADE, related_name="lti_links")
    lineitem_url = models.URLField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.resource_link} -> {self.exam}"


class GradeSend(models.Model):
    """The score of an attempt sent to the LMS grade book (one row per attempt, the latest send). A failed send is
    retried (on the next grading, by `manage.py lti_send_grades`, or from the exam's LMS page) and shown to the
    instructor with its error."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed; will be retried"

    attempt = models.OneToOneField(Attempt, on_delete=models.CASCADE, related_name="lti_grade")
    link = models.ForeignKey(ExamLink, on_delete=models.CASCADE, related_name="grades")
    lti_user = models.ForeignKey("lti_tool.LtiUser", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    score_given = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    score_maximum = models.DecimalField(max_digits=8, decimal_places=2, default=0)
    fully_graded = models.BooleanField(default=False)
    tries = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Grade of {self.attempt}: {self.get_status_display()}"


class ProctoringHandover(models.Model):
    """One LtiStartProctoring message (LTI Proctoring Services 1.0): the platform hands a candidate to this tool
    for set-up before its own assessment starts, and takes them back with LtiStartAssessment. `session_data` is the
    platform's anti-forgery value, echoed back unchanged."""

    class State(models.TextChoices):
        SETTING_UP = "setting_up", "Setting up"
        STARTED = "started", "Assessment started"
        ENDED = "ended", "Assessment ended"

    link = models.ForeignKey(ExamLink, on_delete=models.CASCADE, related_name="handovers")
    lti_user = models.ForeignKey("lti_tool.LtiUser", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    attempt_number = models.CharField(max_length=64)
    session_data = models.TextField(blank=True)
    start_assessment_url = models.URLField(max_length=500)
    end_assessment_return = models.BooleanField(default=False)
    # The Assessment Control Service, when the platform offers it: where to send a flag a person confirmed.
    acs_url = models.URLField(max_length=500, blank=True)
    acs_actions = models.JSONField(default=list, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.SETTING_UP)
    attempt = models.ForeignKey(Attempt, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["link", "lti_user", "attempt_number"], name="one_handover_per_attempt")
        ]

    def __str__(self) -> str:
        return f"Proctoring of {self.user} for {self.link.exam}, attempt {self.attempt_number}"
