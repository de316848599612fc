from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from examsite.timezones import validate_time_zone

# An answer sent in the last moment before the deadline can reach the server a little after it (the autosave
# request is in flight, or the page flushes its pending saves when the timer reaches zero). Five seconds covers a
# slow round trip without giving anyone meaningful extra time.
DEADLINE_GRACE = timedelta(seconds=5)


class Exam(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_exams")
    title = models.CharField(max_length=200)
    instructions = models.TextField(blank=True)
    opens_at = models.DateTimeField()
    closes_at = models.DateTimeField()
    duration_minutes = models.PositiveIntegerField(default=60)
    published = models.BooleanField(default=False)
    max_attempts = models.PositiveSmallIntegerField(default=1)
    # Proctoring is on by default. The settings are a JSON object read through proctoring.rules.RuleSettings,
    # which fills defaults for absent keys, so exams keep working as new checks are added.
    proctoring_enabled = models.BooleanField(default=True)
    proctoring_settings = models.JSONField(default=dict, blank=True)

    class IdentityAssurance(models.TextChoices):
        """What must be known of a student's face enrolment before a proctored exam starts (issue 11)."""

        NONE = "none", "None: the student's own enrolment is enough"
        MATCHED = "matched", "The enrolment matches the reference photo, or a person approved it"
        APPROVED = "approved", "A person approved the enrolment"

    identity_assurance = models.CharField(
        max_length=16, choices=IdentityAssurance.choices, default=IdentityAssurance.NONE
    )
    # The student holds a photo ID up to the camera once per enrolment before this exam starts; the face printed on
    # it is matched with the enrolment, and the picture kept as evidence (issue 11).
    photo_id_required = models.BooleanField(default=False)
    # The zone its times were entered in (the instructor's): students see their own local time beside it.
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-opens_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(closes_at__gt=models.F("opens_at")), name="exam_closes_after_opening"),
            models.CheckConstraint(condition=Q(duration_minutes__gte=1), name="exam_duration_positive"),
            models.CheckConstraint(condition=Q(max_attempts__gte=1), name="exam_max_attempts_positive"),
        ]

    def __str__(self) -> str:
        return self.title


class Question(models.Model):
    class Kind(models.TextChoices):
        SINGLE = "single", "Single choice"
        MULTIPLE = "multiple", "Multiple choice"
        SHORT = "short", "Short answer"

    exam = models.ForeignKey(Exam, on_delete=models.CASCADE, related_name="questions")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SINGLE)
    text = models.TextField()
    points = models.DecimalField(max_digits=6, decimal_places=2, default=1)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["order", "id"]
        constraints = [models.CheckConstraint(condition=Q(points__gte=0), name="question_points_not_negative")]

    def __str__(self) -> str:
        return self.text[:60]

    @property
    def is_choice(self) -> bool:
        return self.kind in (self.Kind.SINGLE, self.Kind.MULTIPLE)


class Choice(models.Model):
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="choices")
    text = models.CharField(max_length=500)
    is_correct = models.BooleanField(default=False)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return self.text


class Enrollment(models.Model):
    exam = models.ForeignKey(Exam, on_delete=models.CASCADE, related_name="enrollments")
    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrollments")
    # Accommodations: extra time, and per-check relief for proctoring (for example {"looking_away": false} for a
    # visually impaired student whose gaze should not be judged). Read by proctoring.rules.
    extra_minutes = models.PositiveIntegerField(default=0)
    accommodations = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["exam", "student__username"]
        constraints = [models.UniqueConstraint(fields=["exam", "student"], name="unique_enrollment_per_exam")]

    def __str__(self) -> str:
        return f"{self.student} in {self.exam}"


class Attempt(models.Model):
    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        SUBMITTED = "submitted", "Submitted"
        EXPIRED = "expired", "Expired"

    exam = models.ForeignKey(Exam, on_delete=models.CASCADE, related_name="attempts")
    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_PROGRESS, db_index=True)
    started_at = models.DateTimeField()
    # The server's deadline is the only one that counts: the page's countdown follows it, and answers after it are
    # refused whatever the browser's clock says.
    deadline = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    score = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    max_score = models.DecimalField(max_digits=8, decimal_places=2, default=0)
    # True once every short answer has been graded by hand.
    fully_graded = models.BooleanField(default=False)

    class Meta:
        ordering = ["-started_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["exam", "student", "number"], name="unique_attempt_number"),
            models.UniqueConstraint(
                fields=["exam", "student"],
                condition=Q(status="in_progress"),
                name="one_open_attempt_per_student_and_exam",
            ),
        ]

    def __str__(self) -> str:
        return f"Attempt {self.number} of {self.student} on {self.exam}"

    def is_live(self, now: datetime | None = None) -> bool:
        """Still running: in progress, and its deadline (with DEADLINE_GRACE) not passed. The one answer to "is this
        attempt live?" for the exam pages, the expiry and the proctoring session alike (issue 10)."""
        now = now or timezone.now()
        return self.status == self.Status.IN_PROGRESS and now <= self.deadline + DEADLINE_GRACE


class Answer(models.Model):
    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, related_name="answers")
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="answers")
    selected_choices = models.ManyToManyField(Choice, blank=True, related_name="answers")
    text = models.TextField(blank=True)
    saved_at = models.DateTimeField(auto_now=True)
    points_awarded = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    graded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    graded_at = models.DateTimeField(null=True, blank=True)
    feedback = models.TextField(blank=True)

    class Meta:
        ordering = ["question__order", "question_id"]
        constraints = [models.UniqueConstraint(fields=["attempt", "question"], name="one_answer_per_question")]

    def __str__(self) -> str:
        return f"Answer to {self.question_id} in attempt {self.attempt_id}"
