"""Proctoring sessions: open or resume at connect, record each analysed frame (the rules' step, and the flags it
opens, with the frame as snapshot evidence, and closes), note stream health, end.

The consumer calls these through `database_sync_to_async`; each owns its transaction. `session_record_result`
commits the observation, any new flag and its snapshot before it returns the events, so an event that names a
flag id always names a flag that exists.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings as django_settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from exams.models import Attempt, Enrollment
from proctoring import rules
from proctoring.decisions import ReviewError
from proctoring.models import BrowserSignal, Flag, InstructorMessage, Observation, ProctoringSession, StreamEvent
from proctoring.permissions import user_can_review_exam
from proctoring.pool.base import EXPIRED, OK, REJECTED, AnalysisResult
from proctoring.selectors import current_embedding_model, enrolled_face_of, session_open_flags
from proctoring.services import frame_rows
from proctoring.services.evidence import snapshot_store
from proctoring.vision.change import CHANGE_THRESHOLD
from proctoring.vision.packs import embedding_pack_of
from proctoring.vision.types import EnrolledFace
from proctoring.vision.types import Observation as Seen

log = logging.getLogger(__name__)

# WebSocket close codes (docs/protocol.md).
NOT_SIGNED_IN = 4401
NOT_YOURS = 4403
NO_SUCH_ATTEMPT = 4404
NOT_IN_PROGRESS = 4409
NOT_ENROLLED = 4412
TOO_MANY = 4429

# More connections than this per attempt within a minute is a reconnect storm (or abuse): refuse with 4429.
MAX_CONNECTS_PER_MINUTE = 12
# An instructor's message to a student during the exam (the monitor's box says so too).
MESSAGE_MAX = 500


class SessionRefused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class SessionStart:
    session_id: int
    attempt_id: int
    exam_id: int
    student: str
    resumed: bool
    settings: rules.RuleSettings
    enrolled: EnrolledFace
    identity_due: bool
    # Frame numbers continue across reconnects, so observations of one session never collide.
    last_seq: int = 0
    student_id: int = 0
    # The instructor's messages to this attempt so far, oldest first (instructor_message_event), so that a reload
    # or a reconnect shows them again.
    messages: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class FrameOutcome:
    events: list[dict[str, Any]] = field(default_factory=list)
    attention: int | None = None
    label: str | None = None
    # For the instructor's live monitor: every alert of this frame (most important first), the conditions the
    # frame shows (the rules' signals), and, when a flag opened or closed, the session's open flags.
    alerts: list[dict[str, Any]] = field(default_factory=list)
    conditions: tuple[str, ...] = ()
    open_flags: list[dict[str, Any]] | None = None
    identity_due: bool = False
    # Set when the session ended on this frame (the attempt closed, or the exam's policy): the reason.
    ended: str | None = None


def _enrolment_current(enrolled: EnrolledFace) -> bool:
    """Whether an enrolment is in the embedding space the workers use now (selectors.current_embedding_model)."""
    try:
        expected = current_embedding_model(pack=django_settings.MODEL_PACK)
    except Exception:  # noqa: BLE001 - without a readable manifest the workers report the real error per frame
        return True
    return (embedding_pack_of(enrolled.pack), enrolled.model_id) == expected


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def session_settings_for(*, attempt: Attempt) -> rules.RuleSettings:
    """The exam's settings with the student's accommodations. A bad exam configuration falls back to the defaults,
    loudly in the log: refusing a student at the start of their exam for an instructor's typo would be worse."""
    enrollment = Enrollment.objects.filter(exam_id=attempt.exam_id, student_id=attempt.student_id).first()
    accommodations = enrollment.accommodations if enrollment else {}
    try:
        return rules.RuleSettings.from_config(attempt.exam.proctoring_settings, accommodations)
    except ValueError as exc:
        log.error("exam %s has invalid proctoring settings (%s); using the defaults", attempt.exam_id, exc)
        return rules.RuleSettings()


def session_open(*, attempt_id: int, user: Any) -> SessionStart:
    """Authorise a connection and open the attempt's session, or resume the open one.

    1. Who: signed in (4401), the attempt exists (4404) and is theirs (4403), in progress with proctoring on (4409).
    2. Enrolled with the pack the workers run (4412: re-enrol rather than compare across embedding spaces).
    3. Not a reconnect storm (4429).
    4. Resume the open session (same id, same rules state) or start one; the DB constraint settles races.
    """
    if user is None or not user.is_authenticated:
        raise SessionRefused(NOT_SIGNED_IN, "not signed in")
    attempt = Attempt.objects.select_related("exam", "student").filter(pk=attempt_id).first()
    if attempt is None:
        raise SessionRefused(NO_SUCH_ATTEMPT, "no such attempt")
    if attempt.student_id != user.pk:
        raise SessionRefused(NOT_YOURS, "not your attempt")
    now = timezone.now()
    if not attempt.is_live(now):
        raise SessionRefused(NOT_IN_PROGRESS, "the attempt is not in progress")
    if not attempt.exam.proctoring_enabled:
        raise SessionRefused(NOT_IN_PROGRESS, "proctoring is off for this exam")
    enrolled = enrolled_face_of(user=user)
    if enrolled is None:
        raise SessionRefused(NOT_ENROLLED, "no face enrolment")
    if not _enrolment_current(enrolled):
        raise SessionRefused(NOT_ENROLLED, "enrolled with another model: re-enrol")
    recent = StreamEvent.objects.filter(
        session__attempt=attempt,
        kind__in=[StreamEvent.Kind.CONNECTED, StreamEvent.Kind.RESUMED],
        at__gte=now - timedelta(minutes=1),
    ).count()
    if recent >= MAX_CONNECTS_PER_MINUTE:
        raise SessionRefused(TOO_MANY, "too many connections")

    with transaction.atomic():
        session = ProctoringSession.objects.select_for_update().filter(attempt=attempt, status="active").first()
        resumed = session is not None
        if session is None:
            settings = session_settings_for(attempt=attempt)
            try:
                with transaction.atomic():
                    session = ProctoringSession.objects.create(
                        attempt=attempt, started_at=now, settings_snapshot=settings.to_dict()
                    )
            except IntegrityError:
                # Another socket of the same student won the race: share its session.
                session = ProctoringSession.objects.select_for_update().get(attempt=attempt, status="active")
                resumed = True
        if resumed:
            session.resumed_count += 1
            session.save(update_fields=["resumed_count"])
        StreamEvent.objects.create(
            session=session, kind=StreamEvent.Kind.RESUMED if resumed else StreamEvent.Kind.CONNECTED, at=now
        )
    settings = rules.RuleSettings.from_dict(session.settings_snapshot)
    state = rules.RuleState.from_dict(session.state)
    return SessionStart(
        session_id=session.pk,
        attempt_id=attempt.pk,
        exam_id=attempt.exam_id,
        student=attempt.student.get_full_name() or attempt.student.get_username(),
        student_id=attempt.student_id,
        resumed=resumed,
        settings=settings,
        enrolled=enrolled,
        identity_due=rules.identity_due(state, settings),
        last_seq=session.last_seq,
        messages=tuple(
            instructor_message_event(m, replayed=True)
            for m in InstructorMessage.objects.filter(attempt=attempt).order_by("sent_at", "id")
        ),
    )


def instructor_message_event(message: InstructorMessage, *, replayed: bool = False) -> dict[str, Any]:
    """The INSTRUCTOR_MESSAGE event for a stored message (docs/protocol.md): live, or replayed on connect."""
    event: dict[str, Any] = {
        "event": "INSTRUCTOR_MESSAGE",
        "message": message.text,
        "message_id": message.pk,
        "at": message.sent_at.timestamp(),
    }
    if replayed:
        event["replayed"] = True
    return event


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


_PROBLEM_EVENT = {REJECTED: "FRAME_REJECTED", EXPIRED: "OVERLOADED"}
_PROBLEM_KIND = {
    "FRAME_REJECTED": StreamEvent.Kind.FRAME_REJECTED,
    "OVERLOADED": StreamEvent.Kind.OVERLOADED,
    "ERROR": StreamEvent.Kind.SERVER_ERROR,
}


def session_record_result(
    *,
    session_id: int,
    seq: int,
    received_at: float,
    result: AnalysisResult,
    frame: bytes,
    latency_ms: float | None = None,
    dropped: int = 0,
) -> FrameOutcome:
    """Record one frame's result and decide its events.

    1. Lock the session row: one writer per session even across ASGI processes.
    2. A frame the server could not judge (rejected, shed, error, timeout) is recorded as stream health and
       answered, and never moves a rules window.
    3. Otherwise: the rules step, the compact observation, flags opened (with the snapshot) or closed.
    4. The new rules state is saved, then everything commits; only then are the events returned to be sent.
    Pose and gaze come relative to the student's neutral pose from the worker (FrameJob.enrolled).
    """
    with transaction.atomic():
        locked = frame_rows.session_lock(session_id)
        if locked.status != ProctoringSession.Status.ACTIVE:
            return FrameOutcome(ended=locked.end_reason or "ended")
        settings = rules.RuleSettings.from_dict(locked.settings_snapshot)
        state = rules.RuleState.from_dict(locked.state)

        if result.status != OK:
            event = _PROBLEM_EVENT.get(result.status, "ERROR")
            decision = rules.server_problem(state, at=received_at, event=event, settings=settings)
            StreamEvent.objects.create(
                session_id=session_id,
                kind=_PROBLEM_KIND[event],
                at=_when(received_at),
                details={"seq": seq, "status": result.status, "reason": result.reason, "worker": result.worker},
            )
            counters: dict[str, Any] = {"frames_dropped": F("frames_dropped") + dropped}
            if event == "OVERLOADED":
                counters["frames_shed"] = F("frames_shed") + 1
            elif event == "ERROR":
                counters["server_errors"] = F("server_errors") + 1
            ProctoringSession.objects.filter(pk=session_id).update(state=decision.state.to_dict(), **counters)
            problems = [dict(e) for e in decision.events]
            for problem in problems:
                if problem["event"] == "FRAME_REJECTED":
                    problem["reason"] = result.reason or "corrupt"
            return FrameOutcome(events=problems, identity_due=rules.identity_due(decision.state, settings))

        seen = Seen.from_dict(result.observation or {})
        if seq <= locked.last_seq:
            # A replaced connection's last frame landed after the new connection numbered its first one. Keep both
            # observations rather than lose one: this one takes the next free number. (The locked row knows the
            # last number, so no query per frame asks the observations.)
            seq = locked.last_seq + 1
        record = rules.FrameRecord.from_observation(seen, seq=seq, at=received_at)
        decision = rules.step(state, record, settings)
        frame_rows.observation_insert(
            session_id=session_id,
            seq=seq,
            captured_at=_when(received_at),
            face_count=record.face_count,
            face_scores=list(record.face_scores),
            identity_checked=record.identity_checked,
            similarity=record.similarity,
            identity_threshold=record.identity_threshold,
            identity_error=(record.identity_error or "")[:200],
            yaw=record.yaw,
            pitch=record.pitch,
            gaze_yaw=record.gaze_yaw,
            gaze_pitch=record.gaze_pitch,
            phone_score=record.phone_score,
            other_objects=dict(record.objects),
            objects_from_seq=result.objects_from_seq,
            identity_from_seq=result.identity_from_seq,
            attention=decision.frame_attention or 0,
            signals=list(decision.signals),
            latency_ms=latency_ms,
            model_versions=dict(seen.models),
        )
        flag_ids: dict[str, int] = {}
        if decision.opens or decision.closes:
            # A few frames in a hundred: these go through the ORM, on the row this transaction has locked.
            session = ProctoringSession.objects.get(pk=session_id)
            for closed in decision.closes:
                flag_close(session=session, closed=closed)
            for opened in decision.opens:
                if opened.kind in (rules.PHONE_DETECTED, rules.FACE_NOT_FOUND, rules.MULTIPLE_FACES):
                    faces = opened.kind != rules.PHONE_DETECTED
                    evidence = _object_evidence(seq, result, faces=faces)
                    opened = dataclasses.replace(opened, details={**opened.details, **evidence})
                elif opened.kind == rules.IDENTITY_MISMATCH:
                    opened = dataclasses.replace(
                        opened, details={**opened.details, **_identity_evidence(session, seq, settings)}
                    )
                flag = flag_open(
                    session=session,
                    opened=opened,
                    model_version=model_version_of(seen.models),
                    frame=frame,
                    width=seen.width,
                    height=seen.height,
                    settings_snapshot=locked.settings_snapshot,
                )
                flag_ids[opened.kind] = flag.pk
        frame_rows.session_frame_update(
            session_id=session_id,
            state=decision.state.to_dict(),
            dropped=dropped,
            last_frame_at=_when(received_at),
            last_seq=seq,
        )

        ended = None
        if not locked.attempt.is_live():
            ended = "attempt_closed"
        elif settings.end_after_confirmed:
            confirmed = Flag.objects.filter(session__attempt_id=locked.attempt.pk, status=Flag.Status.CONFIRMED).count()
            if rules.end_due(confirmed=confirmed, settings=settings):
                ended = "violations"
        if ended:
            _end(ProctoringSession.objects.get(pk=session_id), reason=ended)

    events: list[dict[str, Any]] = []
    alerts = []
    for raw in decision.events:
        item = dict(raw)
        check = item.pop("check", None)
        if check is not None:
            item["flag_id"] = flag_ids[check]
        events.append(item)
        if item["event"] not in ("AUTHORIZED", "ATTENTION_UPDATE"):
            alerts.append({"event": item["event"], "at": received_at, "flag_id": item.get("flag_id")})
    return FrameOutcome(
        events=events,
        attention=decision.attention,
        label=decision.label,
        alerts=alerts,
        conditions=tuple(decision.signals),
        open_flags=session_open_flags(session_id) if decision.opens or decision.closes else None,
        identity_due=rules.identity_due(decision.state, settings),
        ended=ended,
    )


def _identity_evidence(session: ProctoringSession, seq: int, settings: rules.RuleSettings) -> dict[str, Any]:
    """How many frames of the flag's window re-used an earlier match instead of measuring (the skip rule): such a
    frame can only have counted as a match, never towards this flag."""
    reused = Observation.objects.filter(
        session=session, seq__gt=seq - settings.n, seq__lte=seq, identity_from_seq__isnull=False
    ).count()
    return {"window_matches_reused": reused}


def _object_evidence(seq: int, result: AnalysisResult, *, faces: bool) -> dict[str, Any]:
    """How the answer a flag rests on was obtained for this frame, for its evidence (the skip rule): the phone
    detector's for a phone flag, the face detector's for a face flag (`faces`). An unchanged frame re-uses both, but
    the face detector runs again where the re-used face was too small or had moved."""
    from_seq = result.faces_from_seq if faces else result.objects_from_seq
    if from_seq is None:
        return {"objects_measured_on_seq": seq}
    both = result.faces_from_seq is not None and result.objects_from_seq is not None
    what = "The face and phone detectors' results were" if both else "The phone detector's result was"
    return {
        "objects_measured_on_seq": from_seq,
        "skip_rule": (
            f"{what} re-used from frame {from_seq}: this frame differed from it by {result.change} grey levels at "
            f"most, under the {CHANGE_THRESHOLD} that re-runs {'them' if both else 'it'}."
        ),
    }


def session_note_stream(*, session_id: int, kind: str, details: dict[str, Any] | None = None) -> None:
    """Record stream health (stalled, recovered, disconnected). Never a flag."""
    StreamEvent.objects.create(session_id=session_id, kind=kind, at=timezone.now(), details=details or {})


def session_disconnect(*, session_id: int, code: int) -> str | None:
    """The socket closed. Record it; if the attempt is no longer in progress (the student submitted and the page
    moved on), end the session with it. Returns how it ended when it ended here ("submitted" when the student
    submitted, "ended" otherwise, as the live monitor says), or None.

    The page's form submission completes before the browser unloads the exam page, so by the time its socket closes
    the attempt is already submitted; a dropped network leaves the attempt open and the session resumable.
    """
    session = ProctoringSession.objects.select_related("attempt").get(pk=session_id)
    StreamEvent.objects.create(
        session=session, kind=StreamEvent.Kind.DISCONNECTED, at=timezone.now(), details={"code": code}
    )
    attempt = session.attempt
    if session.status == ProctoringSession.Status.ACTIVE and not attempt.is_live():
        if session_end(session_id=session_id, reason="attempt_closed"):
            return "submitted" if attempt.status == Attempt.Status.SUBMITTED else "ended"
    return None


def session_record_signal(*, session_id: int, kind: str) -> BrowserSignal:
    """A browser integrity signal, as a timeline mark for the reviewer. Raises ValueError on an unknown kind."""
    if kind not in BrowserSignal.Kind.values:
        raise ValueError(f"unknown signal {kind!r}")
    return BrowserSignal.objects.create(session_id=session_id, kind=kind, at=timezone.now())


def _end(session: ProctoringSession, *, reason: str) -> None:
    now = timezone.now()
    session.status = ProctoringSession.Status.ENDED
    session.ended_at = now
    session.end_reason = reason[:32]
    session.save(update_fields=["status", "ended_at", "end_reason"])
    flags_close_all(session=session, at=now)
    StreamEvent.objects.create(session=session, kind=StreamEvent.Kind.ENDED, at=now, details={"reason": reason})


def session_end(*, session_id: int, reason: str) -> bool:
    """End the session (the client left at submit, the attempt closed). Returns False when it had already ended."""
    with transaction.atomic():
        session = ProctoringSession.objects.select_for_update().get(pk=session_id)
        if session.status != ProctoringSession.Status.ACTIVE:
            return False
        _end(session, reason=reason)
        return True


def attempt_group(attempt_id: int) -> str:
    """Every live socket of one attempt: a new connection replaces the old; instructor messages reach the student."""
    return f"proctor_attempt_{attempt_id}"


def session_end_for_attempt(*, attempt: Attempt, reason: str = "attempt_closed") -> bool:
    """For the exam flow: call when an attempt is submitted or expires, so the open session ends with it.

    Once that commits, the attempt's live socket (if one is still open, in this process or another) is told through
    the channel layer; the consumer then sends SESSION_ENDED and closes. Returns False when no session was active.
    """
    session = ProctoringSession.objects.filter(attempt=attempt, status="active").first()
    if session is None or not session_end(session_id=session.pk, reason=reason):
        return False
    attempt_id, submitted = attempt.pk, attempt.status == Attempt.Status.SUBMITTED
    transaction.on_commit(lambda: _tell_live_socket(attempt_id=attempt_id, reason=reason, submitted=submitted))
    return True


def _tell_live_socket(*, attempt_id: int, reason: str, submitted: bool = False) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "proctor.ended", "reason": reason, "submitted": submitted}
    try:
        async_to_sync(layer.group_send)(attempt_group(attempt_id), message)
    except Exception:  # noqa: BLE001 - best effort: the session has ended; a socket left open learns it on its next frame
        log.warning("proctoring: could not tell attempt %s's socket that its session ended", attempt_id, exc_info=True)


# --- Flags: opened and closed from the rules' decisions, each opened with its frame as snapshot evidence. ---


def model_version_of(models: dict[str, str]) -> str:
    """One readable string of the models behind an observation, e.g. "detector=blazeface@0.6.0,embedder=..."."""
    return ",".join(f"{role}={version}" for role, version in sorted(models.items()))


def flag_open(
    *,
    session: ProctoringSession,
    opened: rules.FlagOpen,
    model_version: str,
    frame: bytes | None,
    width: int,
    height: int,
    settings_snapshot: dict[str, Any] | None = None,
) -> Flag:
    """Create the flag and its snapshot. The caller holds the transaction, so both commit before the event goes out."""
    details = dict(opened.details)
    if settings_snapshot is not None:
        details["settings"] = settings_snapshot
    flag = Flag.objects.create(
        session=session,
        kind=opened.kind,
        started_at=_when(opened.at),
        started_seq=opened.seq,
        confidence=opened.confidence,
        threshold=opened.threshold,
        model_version=model_version,
        details=details,
    )
    if frame:
        snapshot_store(flag=flag, data=frame, width=width, height=height, taken_at=_when(opened.at))
    return flag


def flag_close(*, session: ProctoringSession, closed: rules.FlagClose) -> int:
    """Close the open flag of this kind (there is at most one per kind per session). Returns rows updated. A flag
    closed because the frames could no longer tell says so in its details, for the reviewer."""
    flags = Flag.objects.filter(session=session, kind=closed.kind, ended_at__isnull=True)
    if closed.reason != "clear":
        for flag in flags.only("details"):
            flag.details = {**(flag.details or {}), "ended_because": closed.reason}
            flag.save(update_fields=["details"])
    return flags.update(ended_at=_when(closed.at), ended_seq=closed.seq)


def flags_close_all(*, session: ProctoringSession, at: datetime) -> int:
    """When a session ends, its open spans end with it. Review status is untouched: a human still decides."""
    return Flag.objects.filter(session=session, ended_at__isnull=True).update(ended_at=at)
