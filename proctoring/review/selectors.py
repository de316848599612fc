"""Reads for the review pages: which exams and attempts a person may see, the integrity summary of an exam's attempts,
everything the review page of one attempt shows, and what a student may see of their own flags.

Withdrawn flags (a re-scoring no longer raises them) are left out of counts and shown apart, with their evidence.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import OuterRef, Prefetch, QuerySet, Subquery
from django.utils import timezone

from accounts.models import User
from exams.models import Attempt, Enrollment, Exam
from exams.permissions import exams_managed_by
from proctoring import rules
from proctoring.models import (
    BrowserSignal,
    Flag,
    InstructorMessage,
    Observation,
    ProctoringSession,
    Snapshot,
    StreamEvent,
)
from proctoring.permissions import user_can_review_exam
from proctoring.review.models import FlagDecision, FlagResponse, RescoreRun
from proctoring.selectors import monitor_flag

# How much an open flag of each kind weighs in the review priority. Identity and a second person are the strongest
# signs that someone else is involved; looking away has the most innocent causes (notes on paper allowed, reading
# aloud, a visually impaired student), so it weighs least.
PRIORITY_WEIGHTS: dict[str, float] = {
    rules.IDENTITY_MISMATCH: 5.0,
    rules.MULTIPLE_FACES: 4.0,
    rules.PHONE_DETECTED: 4.0,
    rules.FACE_NOT_FOUND: 2.0,
    rules.LOOKING_AWAY: 1.0,
}
KIND_LABELS: dict[str, str] = dict(Flag.Kind.choices)


def priority_label(score: float) -> str:
    if score >= 8:
        return "High"
    if score >= 3:
        return "Medium"
    if score > 0:
        return "Low"
    return "None"


def flag_priority(flag: Flag) -> float:
    # Confidence scales the weight between a half and all of it, so a weak flag still counts for something.
    return PRIORITY_WEIGHTS.get(flag.kind, 1.0) * (0.5 + 0.5 * max(0.0, min(1.0, flag.confidence)))


def exams_reviewable_by(*, user: User) -> QuerySet[Exam]:
    """Who may review an exam is who may manage it: its instructor, and platform admins."""
    return exams_managed_by(user=user)


def exam_for_review(*, user: User, exam_id: int) -> Exam | None:
    return exams_reviewable_by(user=user).filter(pk=exam_id).first()


def attempt_for_review(*, user: User, attempt_id: int) -> Attempt | None:
    attempt = Attempt.objects.select_related("exam__owner", "student").filter(pk=attempt_id).first()
    if attempt is None or not user_can_review_exam(user=user, exam=attempt.exam):
        return None
    return attempt


def _visible_flags() -> QuerySet[Flag]:
    return Flag.objects.filter(withdrawal__isnull=True)


@dataclass
class AttemptSummary:
    attempt: Attempt
    by_kind: Counter[str] = field(default_factory=Counter)
    open: int = 0
    confirmed: int = 0
    dismissed: int = 0
    responses: int = 0
    priority: float = 0.0

    @property
    def total(self) -> int:
        return self.open + self.confirmed + self.dismissed

    @property
    def priority_label(self) -> str:
        return priority_label(self.priority)

    @property
    def review_state(self) -> str:
        if self.open:
            return "needs review"
        if self.total:
            return "reviewed"
        return "no flags"

    def kind_counts(self) -> list[tuple[str, str, int]]:
        return [(kind, KIND_LABELS[kind], self.by_kind[kind]) for kind in rules.CHECKS]


SORTS = {
    "priority": (lambda s: (-s.priority, -s.open, s.attempt.student.username), "Review priority"),
    "student": (lambda s: (s.attempt.student.username, s.attempt.number), "Student"),
    "open": (lambda s: (-s.open, -s.priority, s.attempt.student.username), "Open flags"),
    "flags": (lambda s: (-s.total, s.attempt.student.username), "All flags"),
    "score": (
        lambda s: (s.attempt.score is None, -(s.attempt.score or Decimal(0)), s.attempt.student.username),
        "Score",
    ),
    "started": (lambda s: (s.attempt.started_at, s.attempt.pk), "Started"),
}
STATES = {"": "Any", "needs review": "Needs review", "reviewed": "Reviewed", "no flags": "No flags"}


def exam_attempt_summaries(
    *, exam: Exam, sort: str = "priority", kind: str = "", state: str = "", query: str = ""
) -> list[AttemptSummary]:
    """Every attempt of the exam with its integrity summary, filtered and sorted.

    Two queries whatever the number of attempts; the counting and sorting happen in Python, which is fine for the
    hundreds of attempts an exam has, and lets the priority (a weighted sum) sort without database-specific SQL.
    """
    attempts = Attempt.objects.filter(exam=exam).select_related("student").order_by("student__username", "number")
    if query:
        attempts = attempts.filter(student__username__icontains=query) | attempts.filter(
            student__last_name__icontains=query
        )
    summaries = {a.pk: AttemptSummary(attempt=a) for a in attempts}
    flags = _visible_flags().filter(session__attempt__exam=exam).select_related("session")
    responded = set(FlagResponse.objects.filter(flag__session__attempt__exam=exam).values_list("flag_id", flat=True))
    for flag in flags:
        summary = summaries.get(flag.session.attempt_id)
        if summary is None:
            continue
        summary.by_kind[flag.kind] += 1
        if flag.status == Flag.Status.OPEN:
            summary.open += 1
            summary.priority += flag_priority(flag)
        elif flag.status == Flag.Status.CONFIRMED:
            summary.confirmed += 1
        else:
            summary.dismissed += 1
        summary.responses += flag.pk in responded
    out = list(summaries.values())
    if kind in KIND_LABELS:
        out = [s for s in out if s.by_kind[kind]]
    if state in STATES and state:
        out = [s for s in out if s.review_state == state]
    key = SORTS.get(sort, SORTS["priority"])[0]
    return sorted(out, key=key)


@dataclass
class FlagView:
    flag: Flag
    snapshots: list[Snapshot]
    decisions: list[FlagDecision]
    response: FlagResponse | None
    withdrawn: bool
    priority: float

    @property
    def note(self) -> str:
        """The latest reviewer's note, if any."""
        return next((d.note for d in self.decisions if d.note and d.action in _HUMAN), "")

    @property
    def measured(self) -> list[tuple[str, object]]:
        """What the frame that opened the flag measured (rules' details["frame"]), with readable names."""
        frame = (self.flag.details or {}).get("frame") or {}
        return [(_MEASURE_LABELS.get(k, k.replace("_", " ")), v) for k, v in frame.items() if v is not None]

    @property
    def duration_s(self) -> float | None:
        if self.flag.ended_at is None:
            return None
        return (self.flag.ended_at - self.flag.started_at).total_seconds()


_MEASURE_LABELS = {
    "similarity": "identity similarity",
    "threshold": "identity threshold",
    "phone_score": "phone score",
    "face_count": "faces",
    "yaw": "head turn (degrees)",
    "pitch": "head tilt (degrees)",
    "gaze_yaw": "gaze left/right (degrees)",
    "gaze_pitch": "gaze up/down (degrees)",
}
_HUMAN = {FlagDecision.Action.CONFIRM, FlagDecision.Action.DISMISS, FlagDecision.Action.REOPEN}


@dataclass
class AttemptReview:
    attempt: Attempt
    sessions: list[ProctoringSession]
    flags: list[FlagView]
    withdrawn: list[FlagView]
    signals: list[BrowserSignal]
    stream_events: list[StreamEvent]
    attention: list[tuple[datetime, int]]
    messages: list[InstructorMessage]
    # Per frame whose eyes were read: degrees off the student's own straight-ahead gaze (the larger of yaw, pitch).
    gaze: list[tuple[datetime, float]]
    start: datetime | None
    end: datetime | None

    @property
    def frames(self) -> int:
        return len(self.attention)


def attempt_review_data(*, attempt: Attempt) -> AttemptReview:
    """Everything the review page shows, in a fixed number of queries."""
    sessions = list(ProctoringSession.objects.filter(attempt=attempt).order_by("started_at", "id"))
    flags = list(
        Flag.objects.filter(session__attempt=attempt)
        .select_related("withdrawal")
        .prefetch_related(
            Prefetch("snapshots", queryset=Snapshot.objects.order_by("taken_at", "id")),
            Prefetch("decisions", queryset=FlagDecision.objects.select_related("actor").order_by("-at", "-id")),
            Prefetch("responses", queryset=FlagResponse.objects.select_related("student")),
        )
        .order_by("started_at", "id")
    )
    views = []
    for flag in flags:
        # Reverse one-to-one: the attribute raises (an AttributeError) when there is no withdrawal.
        withdrawn = hasattr(flag, "withdrawal")
        responses = list(flag.responses.all())
        views.append(
            FlagView(
                flag=flag,
                snapshots=list(flag.snapshots.all()),
                decisions=list(flag.decisions.all()),
                response=responses[0] if responses else None,
                withdrawn=withdrawn,
                priority=flag_priority(flag),
            )
        )
    signals = list(BrowserSignal.objects.filter(session__attempt=attempt).order_by("at", "id"))
    stream_events = list(StreamEvent.objects.filter(session__attempt=attempt).order_by("at", "id"))
    frames = list(
        Observation.objects.filter(session__attempt=attempt)
        .order_by("captured_at", "id")
        .values_list("captured_at", "attention", "gaze_yaw", "gaze_pitch")
    )
    attention = [(at, value) for at, value, _, _ in frames]
    gaze = [(at, max(abs(yaw), abs(pitch))) for at, _, yaw, pitch in frames if yaw is not None and pitch is not None]
    times = [s.started_at for s in sessions] + [s.ended_at for s in sessions if s.ended_at]
    times += [t for t, _ in attention] + [s.at for s in signals] + [e.at for e in stream_events]
    times += [f.started_at for f in flags] + [f.ended_at for f in flags if f.ended_at]
    return AttemptReview(
        attempt=attempt,
        sessions=sessions,
        flags=[v for v in views if not v.withdrawn],
        withdrawn=[v for v in views if v.withdrawn],
        signals=signals,
        stream_events=stream_events,
        attention=attention,
        gaze=gaze,
        messages=list(InstructorMessage.objects.filter(attempt=attempt).select_related("sender")),
        start=min(times) if times else None,
        end=max(times) if times else None,
    )


def flag_with_session(*, flag_id: int) -> Flag | None:
    return Flag.objects.select_related("session").filter(pk=flag_id).first()


def student_confirmed_flags(*, student: User, attempt: Attempt) -> list[tuple[Flag, FlagResponse | None]]:
    """The confirmed flags of the student's own attempt, each with the student's response if sent. Open and dismissed
    flags are not shown: an open flag is not a finding, and a dismissed one is closed in the student's favour."""
    if attempt.student_id != student.pk:
        return []
    flags = (
        _visible_flags()
        .filter(session__attempt=attempt, status=Flag.Status.CONFIRMED)
        .prefetch_related(Prefetch("responses", queryset=FlagResponse.objects.filter(student=student)))
        .order_by("started_at", "id")
    )
    out = []
    for flag in flags:
        responses = list(flag.responses.all())
        out.append((flag, responses[0] if responses else None))
    return out


def exam_flags_for_export(*, exam: Exam) -> QuerySet[Flag]:
    return (
        _visible_flags()
        .filter(session__attempt__exam=exam)
        .select_related("session__attempt__student")
        .prefetch_related(
            Prefetch("decisions", queryset=FlagDecision.objects.select_related("actor").order_by("-at", "-id")),
            "responses",
        )
        .order_by("session__attempt__student__username", "started_at", "id")
    )


def exam_rescore_runs(*, exam: Exam) -> QuerySet[RescoreRun]:
    return RescoreRun.objects.filter(exam=exam).select_related("actor")


# Where each student of an exam stands, for the live monitor's roster (issue 12). The consumer's live status uses
# the same words for the states it can see (connected, stalled, disconnected, ended, submitted).
ROSTER_STATES = ("not_started", "setting_up", "connected", "stalled", "disconnected", "submitted", "ended")
_CONNECTION_KINDS = (
    StreamEvent.Kind.CONNECTED,
    StreamEvent.Kind.RESUMED,
    StreamEvent.Kind.DISCONNECTED,
    StreamEvent.Kind.STALLED,
    StreamEvent.Kind.RECOVERED,
)


def roster_state(attempt: Attempt | None, session: ProctoringSession | None, last_connection: str | None) -> str:
    """One student's state on the monitor, from their latest attempt, its latest session and the session's last
    connection event."""
    if attempt is None:
        return "not_started"
    if attempt.status == Attempt.Status.SUBMITTED:
        return "submitted"
    if attempt.status != Attempt.Status.IN_PROGRESS or attempt.deadline <= timezone.now():
        return "ended"
    if session is None:
        return "setting_up"  # consent, enrolment or the check: proctoring has not connected yet
    if session.status != ProctoringSession.Status.ACTIVE:
        return "ended"
    if last_connection == StreamEvent.Kind.DISCONNECTED:
        return "disconnected"
    if last_connection == StreamEvent.Kind.STALLED:
        return "stalled"
    return "connected" if session.last_frame_at is not None else "setting_up"


def exam_roster(*, exam: Exam) -> list[dict[str, Any]]:
    """Initial tiles for the live monitor: every student enrolled in the exam (and anyone with an attempt), each
    with their state, latest attention and conditions, open flags and review priority. A fixed number of queries
    whatever the class size: 200 students must not cost 1,000 queries each time a monitor connects."""
    students = {e.student_id: e.student for e in Enrollment.objects.filter(exam=exam).select_related("student")}
    latest: dict[int, Attempt] = {}
    for attempt in Attempt.objects.filter(exam=exam).select_related("student").order_by("number", "id"):
        latest[attempt.student_id] = attempt
        students.setdefault(attempt.student_id, attempt.student)
    last_connection = (
        StreamEvent.objects.filter(session=OuterRef("pk"), kind__in=_CONNECTION_KINDS)
        .order_by("-at", "-id")
        .values("kind")[:1]
    )
    last_observation = Observation.objects.filter(session=OuterRef("pk")).order_by("-seq")
    # Annotated with the latest connection, attention and signals (last_connection, last_attention, last_signals).
    sessions: dict[int, Any] = {}
    for session in (
        ProctoringSession.objects.filter(attempt__in=latest.values())
        .annotate(
            last_connection=Subquery(last_connection),
            last_attention=Subquery(last_observation.values("attention")[:1]),
            last_signals=Subquery(last_observation.values("signals")[:1]),
        )
        .order_by("started_at", "id")
    ):
        sessions[session.attempt_id] = session  # the latest session of each attempt wins
    open_flags: dict[int, list[Flag]] = {}
    for flag in Flag.objects.filter(session__in=sessions.values(), status=Flag.Status.OPEN).order_by(
        "started_at", "id"
    ):
        open_flags.setdefault(flag.session_id, []).append(flag)

    tiles: list[dict[str, Any]] = []
    for student_id, student in students.items():
        latest_attempt = latest.get(student_id)
        live = sessions.get(latest_attempt.pk) if latest_attempt is not None else None
        flags = open_flags.get(live.pk, []) if live is not None else []
        signals = live.last_signals if live is not None else None
        if isinstance(signals, str):  # some databases hand a JSON subquery back as text
            signals = json.loads(signals)
        tiles.append(
            {
                "student_id": student_id,
                "attempt_id": latest_attempt.pk if latest_attempt is not None else None,
                "session_id": live.pk if live is not None else None,
                # The same name the proctoring consumer puts in its status, so a tile keeps one title.
                "student": student.get_full_name() or student.get_username(),
                "state": roster_state(latest_attempt, live, live.last_connection if live is not None else None),
                "attention": live.last_attention if live is not None else None,
                "label": rules.attention_label(live.last_attention)
                if live is not None and live.last_attention is not None
                else None,
                "conditions": list(signals or []),
                "open_flags": [monitor_flag(f) for f in flags],
                "priority": round(sum(flag_priority(f) for f in flags), 2),
                "last_frame_at": live.last_frame_at.timestamp() if live is not None and live.last_frame_at else None,
            }
        )
    tiles.sort(key=lambda t: str(t["student"]).lower())
    return tiles
