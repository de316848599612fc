"""A proctored attempt as the live stream would have stored it, for the review tests.

The observations are scripted measurements (what the models measured on each frame); everything after that is the
project's real code: proctoring.rules.step() decides per frame exactly as the live session service does, flags open
and close from its decisions, and each opened flag stores a real JPEG snapshot (made from public-domain photos that
ship in the scikit-image and matplotlib wheels) through proctoring.services.evidence.snapshot_store.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from functools import cache

import cv2
import matplotlib
import numpy as np
from django.utils import timezone

from exams.models import Attempt, Exam
from proctoring import rules
from proctoring.models import BrowserSignal, Flag, Observation, ProctoringSession, StreamEvent
from proctoring.services.evidence import snapshot_store
from proctoring.services.sessions import model_version_of

ALICE = {
    "face_count": 1,
    "face_scores": [0.97],
    "identity_checked": True,
    "similarity": 0.78,
    "identity_threshold": 0.4,
    "yaw": 3.0,
    "pitch": -2.0,
}
SCENES: dict[str, dict] = {
    "alice": ALICE,
    "stranger": {**ALICE, "similarity": 0.12, "face_scores": [0.95]},
    "two_faces": {**ALICE, "face_count": 2, "face_scores": [0.96, 0.88], "identity_checked": False, "similarity": None},
    "nobody": {"face_count": 0, "face_scores": []},
    "phone": {**ALICE, "phone_score": 0.72},
    "looking_away": {**ALICE, "yaw": 42.0, "pitch": 5.0},
}
# (scene, frames). With the default settings (3 of 5, clear after 3) each bad scene opens exactly one flag.
SCRIPT: list[tuple[str, int]] = [
    ("alice", 8),
    ("stranger", 6),
    ("alice", 5),
    ("two_faces", 6),
    ("alice", 5),
    ("nobody", 6),
    ("alice", 5),
    ("phone", 6),
    ("alice", 4),
    ("looking_away", 6),
    ("alice", 6),
]
MODELS = {"detector": "blazeface@0.6.0", "embedder": "arcface-r100@1", "objects": "ssd-mobilenet@2"}
STALL_AFTER_SEQ = 30  # frames stop for 10 s after this one (a stall: never a flag)


@cache
def _photos() -> dict[str, np.ndarray]:
    from skimage import data

    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    hopper = cv2.imread(os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg"))
    coffee = cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)

    def webcam(image: np.ndarray) -> np.ndarray:
        return cv2.resize(image, (640, 480), interpolation=cv2.INTER_AREA)

    pair = np.hstack([cv2.resize(astronaut, (320, 480)), cv2.resize(hopper, (320, 480))])
    turned = cv2.warpAffine(
        astronaut, np.float32([[1, 0.25, -60], [0, 1, 0]]), (astronaut.shape[1], astronaut.shape[0])
    )
    return {
        "alice": webcam(astronaut),
        "stranger": webcam(hopper),
        "two_faces": webcam(pair),
        "nobody": webcam(coffee),
        "phone": webcam(astronaut),
        "looking_away": webcam(turned),
    }


def jpeg(scene: str, quality: int = 80) -> bytes:
    ok, data = cv2.imencode(".jpg", _photos()[scene], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


def _at(t0: datetime, seq: int) -> datetime:
    return t0 + timedelta(seconds=2 * seq + (10 if seq > STALL_AFTER_SEQ else 0))


def build_proctored_attempt(
    *, exam: Exam, student, script: list[tuple[str, int]] | None = None, t0: datetime | None = None
) -> Attempt:
    """An attempt with one ended proctoring session: observations, flags with snapshots, browser signals, a stall."""
    t0 = t0 or (timezone.now() - timedelta(hours=2)).replace(microsecond=0)
    settings = rules.RuleSettings.from_config(exam.proctoring_settings)
    number = Attempt.objects.filter(exam=exam, student=student).count() + 1
    attempt = Attempt.objects.create(
        exam=exam,
        student=student,
        number=number,
        status=Attempt.Status.SUBMITTED,
        started_at=t0,
        deadline=t0 + timedelta(minutes=exam.duration_minutes),
        submitted_at=t0 + timedelta(minutes=5),
        score=7,
        max_score=10,
    )
    session = ProctoringSession.objects.create(
        attempt=attempt, status=ProctoringSession.Status.ACTIVE, started_at=t0, settings_snapshot=settings.to_dict()
    )
    state = rules.RuleState()
    open_flags: dict[str, Flag] = {}
    seq = 0
    scenes = [scene for scene, count in (script or SCRIPT) for _ in range(count)]
    for scene in scenes:
        seq += 1
        values = {"phone_score": 0.0, **SCENES[scene]}
        at = _at(t0, seq)
        record = rules.FrameRecord(
            seq=seq,
            at=at.timestamp(),
            face_count=values["face_count"],
            face_scores=tuple(values["face_scores"]),
            identity_checked=values.get("identity_checked", False),
            similarity=values.get("similarity"),
            identity_threshold=values.get("identity_threshold"),
            yaw=values.get("yaw"),
            pitch=values.get("pitch"),
            phone_score=values["phone_score"],
        )
        decision = rules.step(state, record, settings)
        state = decision.state
        Observation.objects.create(
            session=session,
            seq=seq,
            captured_at=at,
            face_count=record.face_count,
            face_scores=list(record.face_scores),
            identity_checked=record.identity_checked,
            similarity=record.similarity,
            identity_threshold=record.identity_threshold,
            yaw=record.yaw,
            pitch=record.pitch,
            phone_score=record.phone_score,
            attention=decision.frame_attention or 0,
            signals=list(decision.signals),
            latency_ms=120.0,
            model_versions=MODELS,
        )
        for closed in decision.closes:
            flag = open_flags.pop(closed.kind)
            flag.ended_at = datetime.fromtimestamp(closed.at, tz=UTC)
            flag.ended_seq = closed.seq
            flag.save(update_fields=["ended_at", "ended_seq"])
        for opened in decision.opens:
            flag = Flag.objects.create(
                session=session,
                kind=opened.kind,
                started_at=datetime.fromtimestamp(opened.at, tz=UTC),
                started_seq=opened.seq,
                confidence=opened.confidence,
                threshold=opened.threshold,
                model_version=model_version_of(MODELS),
                details={**opened.details, "settings": settings.to_dict()},
            )
            snapshot_store(flag=flag, data=jpeg(scene), width=640, height=480, taken_at=at)
            open_flags[opened.kind] = flag
    end = _at(t0, seq + 1)
    for flag in open_flags.values():
        flag.ended_at = end
        flag.save(update_fields=["ended_at"])
    BrowserSignal.objects.create(session=session, kind=BrowserSignal.Kind.TAB_HIDDEN, at=_at(t0, 20))
    BrowserSignal.objects.create(session=session, kind=BrowserSignal.Kind.TAB_VISIBLE, at=_at(t0, 22))
    BrowserSignal.objects.create(session=session, kind=BrowserSignal.Kind.FULLSCREEN_EXIT, at=_at(t0, 44))
    StreamEvent.objects.create(
        session=session, kind=StreamEvent.Kind.STALLED, at=_at(t0, STALL_AFTER_SEQ) + timedelta(seconds=6)
    )
    StreamEvent.objects.create(session=session, kind=StreamEvent.Kind.RECOVERED, at=_at(t0, STALL_AFTER_SEQ + 1))
    session.status = ProctoringSession.Status.ENDED
    session.ended_at = end
    session.end_reason = "client_end"
    session.frames_analysed = seq
    session.state = state.to_dict()
    session.last_frame_at = _at(t0, seq)
    session.save()
    return attempt
