from __future__ import annotations

from django.conf import settings
from django.db import models


class FaceTemplate(models.Model):
    """A student's enrolled face: the normalised embedding and the model that made it.

    An embedding belongs to its model. A session whose pack or model id differs from the current one must re-enrol
    rather than compare vectors from different embedding spaces.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="face_template")
    pack = models.CharField(max_length=64)
    model_id = models.CharField(max_length=128)
    # float32 little-endian, L2-normalised.
    embedding = models.BinaryField()
    dim = models.PositiveIntegerField()
    # The student's own neutral head pose, in degrees; live pose is judged relative to it.
    neutral_yaw = models.FloatField(default=0.0)
    neutral_pitch = models.FloatField(default=0.0)
    neutral_roll = models.FloatField(default=0.0)
    # The student's own neutral gaze (where the eyes look within the head at enrolment), when the pack has gaze.
    neutral_gaze_yaw = models.FloatField(null=True, blank=True)
    neutral_gaze_pitch = models.FloatField(null=True, blank=True)
    frames_used = models.PositiveIntegerField(default=0)
    quality = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Verification(models.TextChoices):
        """Who the enrolment is known to be (issue 11). Only a person's approval or rejection is a decision; a
        mismatch waits for one."""

        UNVERIFIED = "unverified", "Not verified"
        MATCHED = "matched", "Matches the reference or ID photo"
        MISMATCH = "mismatch", "Does not match the reference or ID photo"
        APPROVED = "approved", "Approved by a person"
        REJECTED = "rejected", "Rejected by a person"

    # One enrolment photo, kept (in private storage) so that a person can compare it with the reference photo; it
    # goes with the template (re-enrolment replaces it, deleting the template deletes it).
    photo_path = models.CharField(max_length=255, blank=True)
    verification = models.CharField(max_length=16, choices=Verification.choices, default=Verification.UNVERIFIED)
    # The cosine similarity to the reference photo and the threshold it was judged by, when one was compared.
    similarity = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    verification_note = models.TextField(blank=True)
    # The photo ID the student held up beside their face, when an exam asked for one: the whole webcam frame, kept
    # in private storage as evidence (PROCTORING_RETENTION_DAYS after it was taken, like flags' snapshots), and the
    # similarity of the face printed on it to the enrolment. It belongs to this enrolment: re-enrolling clears it.
    # The similarity and the time stay when retention removes the image.
    id_photo_path = models.CharField(max_length=255, blank=True)
    id_similarity = models.FloatField(null=True, blank=True)
    id_captured_at = models.DateTimeField(null=True, blank=True)
    # Where the ID's printed face is in that picture, [x1, y1, x2, y2] in pixels: the review shows it enlarged.
    id_face_box = models.JSONField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Face template of {self.user} ({self.pack}/{self.model_id})"


class ReferencePhoto(models.Model):
    """A photo of a student from someone the institution trusts (an admin or an instructor: the card photo, the
    admissions photo), against which the student's own webcam enrolment is checked. One per student; a new one
    replaces it. The file lives in private storage, like evidence."""

    class Source(models.TextChoices):
        ADMIN = "admin", "Added in the admin"
        IMPORT = "import", "Imported in bulk"
        COMMAND = "command", "Added by a command"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reference_photo")
    path = models.CharField(max_length=255, unique=True)
    pack = models.CharField(max_length=64)
    model_id = models.CharField(max_length=128)
    embedding = models.BinaryField()
    source = models.CharField(max_length=16, choices=Source.choices)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Reference photo of {self.user}"


class EnrolmentDecision(models.Model):
    """Audit log of identity verification: every approval and rejection of an enrolment by a person, with the
    similarity the person saw. Rows are only ever added; the student reference survives a deleted template."""

    class Action(models.TextChoices):
        APPROVE = "approve", "Approved"
        REJECT = "reject", "Rejected"

    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrolment_decisions")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=16, choices=Action.choices)
    from_status = models.CharField(max_length=16)
    similarity = models.FloatField(null=True, blank=True)
    note = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} the enrolment of {self.student}"


class ProctoringSession(models.Model):
    """One proctored sitting of an attempt. A reconnect continues the same session, with the rules' running state.

    The database holds the invariant that an attempt has at most one open (active) session, so two sockets racing
    to start one end up sharing it instead of splitting the evidence.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        ENDED = "ended", "Ended"

    attempt = models.ForeignKey("exams.Attempt", on_delete=models.CASCADE, related_name="proctoring_sessions")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=32, blank=True)
    last_frame_at = models.DateTimeField(null=True, blank=True)
    # How many times the student reconnected into this session.
    resumed_count = models.PositiveIntegerField(default=0)
    frames_analysed = models.PositiveIntegerField(default=0)
    frames_dropped = models.PositiveIntegerField(default=0)
    # The highest frame number with a stored observation: frame numbers continue from it across reconnects.
    last_seq = models.PositiveIntegerField(default=0)
    # Frames the server skipped under load (OVERLOADED): capacity, not failure, and never the student's fault.
    frames_shed = models.PositiveIntegerField(default=0)
    # Frames the server failed on (worker error or timeout).
    server_errors = models.PositiveIntegerField(default=0)
    # proctoring.rules.RuleState as JSON: windows, open flags, cooldowns. Saved after every frame so that a
    # reconnect (or another ASGI process) resumes exactly where the last one stopped.
    state = models.JSONField(default=dict, blank=True)
    # The settings the session runs under (RuleSettings as JSON), frozen at start so that a mid-exam edit of the
    # exam cannot change the rules under a student's feet; re-scoring after the exam is a separate, explicit step.
    settings_snapshot = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["attempt"], condition=models.Q(status="active"), name="one_open_proctoring_session_per_attempt"
            )
        ]

    def __str__(self) -> str:
        return f"Proctoring session {self.pk} of attempt {self.attempt_id}"


class Observation(models.Model):
    """What one analysed frame showed, compactly: enough to recompute every flag later without any model.

    Field meanings follow proctoring.rules.FrameRecord, which is what re-scoring reads back.
    """

    session = models.ForeignKey(ProctoringSession, on_delete=models.CASCADE, related_name="observations")
    seq = models.PositiveIntegerField()
    captured_at = models.DateTimeField()
    face_count = models.PositiveSmallIntegerField(default=0)
    # Detection scores of the faces, largest first (a handful of floats).
    face_scores = models.JSONField(default=list, blank=True)
    identity_checked = models.BooleanField(default=False)
    similarity = models.FloatField(null=True, blank=True)
    identity_threshold = models.FloatField(null=True, blank=True)
    identity_error = models.CharField(max_length=200, blank=True)
    # Head pose relative to the student's neutral pose, degrees.
    yaw = models.FloatField(null=True, blank=True)
    pitch = models.FloatField(null=True, blank=True)
    gaze_yaw = models.FloatField(null=True, blank=True)
    gaze_pitch = models.FloatField(null=True, blank=True)
    phone_score = models.FloatField(default=0.0)
    # {label: best score} for the other configured objects.
    other_objects = models.JSONField(default=dict, blank=True)
    # The skip rule: the frame whose face- and object-detector results this frame re-used, because the picture had
    # not changed since (null: the detectors ran on this frame). docs/protocol.md states the rule.
    objects_from_seq = models.PositiveIntegerField(null=True, blank=True)
    # The same rule for the identity check: the frame whose matching identity this frame re-used (null: measured
    # here, or not checked).
    identity_from_seq = models.PositiveIntegerField(null=True, blank=True)
    attention = models.PositiveSmallIntegerField(default=0)
    signals = models.JSONField(default=list, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    model_versions = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["session", "seq"]
        constraints = [models.UniqueConstraint(fields=["session", "seq"], name="one_observation_per_session_seq")]

    def __str__(self) -> str:
        return f"Observation {self.seq} of session {self.session_id}"


class Flag(models.Model):
    """A pattern over time (k of n frames) that a human should look at. Never a verdict by itself."""

    class Kind(models.TextChoices):
        FACE_NOT_FOUND = "face_not_found", "Face not found"
        MULTIPLE_FACES = "multiple_faces", "Multiple faces"
        IDENTITY_MISMATCH = "identity_mismatch", "Identity mismatch"
        PHONE_DETECTED = "phone_detected", "Phone detected"
        LOOKING_AWAY = "looking_away", "Looking away"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CONFIRMED = "confirmed", "Confirmed"
        DISMISSED = "dismissed", "Dismissed"

    session = models.ForeignKey(ProctoringSession, on_delete=models.CASCADE, related_name="flags")
    kind = models.CharField(max_length=32, choices=Kind.choices, db_index=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    started_seq = models.PositiveIntegerField(default=0)
    ended_seq = models.PositiveIntegerField(null=True, blank=True)
    confidence = models.FloatField()
    threshold = models.FloatField()
    # Every model behind the flag, in full ("pack=default@2026.11.4,detector=...,embedder=..."): it was cut at 200
    # characters, mid-name. model_version_label is the short form pages show first.
    model_version = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    # k, n, the per-frame values behind the decision, and the settings that produced it.
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "started_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} in session {self.session_id}"

    @property
    def model_version_label(self) -> str:
        """The model pack and its version ("default@2026.11.4"), or the start of the full string without one."""
        parts = dict(part.split("=", 1) for part in self.model_version.split(",") if "=" in part)
        if "pack" in parts:
            return parts["pack"]
        return self.model_version if len(self.model_version) <= 40 else f"{self.model_version[:39]}…"


class Snapshot(models.Model):
    """The JPEG that triggered a flag. Stored under PRIVATE_STORAGE_DIR with a random name and served only through
    proctoring.views.evidence.snapshot_view, which checks who asks and writes an audit entry."""

    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="snapshots")
    # Path relative to PRIVATE_STORAGE_DIR; random, so a leaked name reveals nothing and cannot be guessed.
    path = models.CharField(max_length=255, unique=True)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    size_bytes = models.PositiveIntegerField(default=0)
    taken_at = models.DateTimeField()

    class Meta:
        ordering = ["taken_at", "id"]

    def __str__(self) -> str:
        return f"Snapshot {self.pk} of flag {self.flag_id}"


class BrowserSignal(models.Model):
    """A browser integrity signal (tab hidden, fullscreen left, paste, camera stopped). A mark, not a flag."""

    class Kind(models.TextChoices):
        TAB_HIDDEN = "tab_hidden", "Tab hidden"
        TAB_VISIBLE = "tab_visible", "Tab visible"
        FULLSCREEN_EXIT = "fullscreen_exit", "Left fullscreen"
        FULLSCREEN_ENTER = "fullscreen_enter", "Entered fullscreen"
        PASTE = "paste", "Paste"
        CAMERA_STOPPED = "camera_stopped", "Camera stopped"
        CAMERA_STARTED = "camera_started", "Camera started"

    session = models.ForeignKey(ProctoringSession, on_delete=models.CASCADE, related_name="browser_signals")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    at = models.DateTimeField()

    class Meta:
        ordering = ["session", "at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} in session {self.session_id}"


class StreamEvent(models.Model):
    """The health of the stream: connects, resumes, stalls, server errors. Never counted against the student."""

    class Kind(models.TextChoices):
        CONNECTED = "connected", "Connected"
        RESUMED = "resumed", "Resumed"
        DISCONNECTED = "disconnected", "Disconnected"
        STALLED = "stalled", "Stalled"
        RECOVERED = "recovered", "Recovered"
        SERVER_ERROR = "server_error", "Server error"
        OVERLOADED = "overloaded", "Overloaded"
        FRAME_REJECTED = "frame_rejected", "Frame rejected"
        ENDED = "ended", "Ended"

    session = models.ForeignKey(ProctoringSession, on_delete=models.CASCADE, related_name="stream_events")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    at = models.DateTimeField()
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["session", "at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} in session {self.session_id}"


class EvidenceView(models.Model):
    """Audit log: who viewed which piece of evidence, and when. Written by the snapshot view on every serve."""

    viewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="evidence_views")
    snapshot = models.ForeignKey(Snapshot, null=True, on_delete=models.SET_NULL, related_name="views")
    # Kept when the snapshot is purged by retention, so the audit trail survives the evidence.
    snapshot_ref = models.CharField(max_length=64)
    attempt_id = models.PositiveBigIntegerField(null=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "id"]

    def __str__(self) -> str:
        return f"{self.viewer} viewed {self.snapshot_ref}"


# Bump whenever the text in templates/proctoring/consent.html (proctoring.services.consent) changes in substance.
# 2026-11b: one enrolment photo kept, reference photos; 2026-11c: the photo ID picture kept as evidence (issue 11).
CONSENT_NOTICE_VERSION = "2026-11c"


class ConsentRecord(models.Model):
    """One answer of a student to the proctoring notice, with the notice's version and when it was given.

    Rows are only ever added: the latest answer to the current version decides, and the history is the audit trail.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="proctoring_consents")
    notice_version = models.CharField(max_length=32)
    accepted = models.BooleanField()
    recorded_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-recorded_at", "-id"]
        indexes = [models.Index(fields=["user", "notice_version", "-recorded_at"], name="consent_user_version")]

    def __str__(self) -> str:
        answer = "accepted" if self.accepted else "declined"
        return f"{self.user} {answer} notice {self.notice_version} at {self.recorded_at:%Y-%m-%d %H:%M}"


# --- The instructor's messages during the exam, replayed to the student's socket on reconnect. ---


class InstructorMessage(models.Model):
    """A message an instructor sent to a student during the exam, from the live monitor. Kept for the record."""

    attempt = models.ForeignKey("exams.Attempt", on_delete=models.CASCADE, related_name="instructor_messages")
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.CharField(max_length=500)
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sent_at", "id"]

    def __str__(self) -> str:
        return f"Message to attempt {self.attempt_id} from {self.sender}"
