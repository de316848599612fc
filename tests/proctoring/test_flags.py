"""Flags from the session service: committed with evidence, closed when the condition clears, and recomputable
from the stored observations alone (what issue 5's re-scoring relies on)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from exams.models import Attempt
from proctoring import rules
from proctoring.models import FaceTemplate, Flag, Observation, ProctoringSession, StreamEvent
from proctoring.pool.base import OK, TIMEOUT, AnalysisResult
from proctoring.selectors import current_embedding_model, frame_records_for_session
from proctoring.services.sessions import (
    SessionRefused,
    model_version_of,
    session_end_for_attempt,
    session_open,
    session_record_result,
)
from proctoring.vision.types import DetectedObject, Face, Identity, Pose
from proctoring.vision.types import Observation as Seen
from tests.factories import EnrollmentFactory, ExamFactory, StudentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def private_storage(settings, tmp_path):
    settings.PRIVATE_STORAGE_DIR = tmp_path / "private"


@pytest.fixture
def alice():
    user = StudentFactory(username="alice")
    FaceTemplate.objects.create(
        user=user, pack="default", model_id=current_embedding_model(pack="default")[1], embedding=b"\0" * 8, dim=2
    )
    return user


def attempt_of(student, **proctoring_settings) -> Attempt:
    exam = ExamFactory(proctoring_settings=proctoring_settings)
    now = timezone.now()
    return Attempt.objects.create(exam=exam, student=student, started_at=now, deadline=now + timedelta(hours=1))


def seen(*, faces: int = 1, phone: float = 0.0, similarity: float = 0.8, yaw: float = 0.0) -> AnalysisResult:
    obs = Seen(
        width=640,
        height=480,
        faces=tuple(Face(box=(0.0, 0.0, 100.0 - i, 100.0 - i), score=0.9) for i in range(faces)),
        identity=Identity(similarity=similarity, threshold=0.4, match=similarity >= 0.4) if faces == 1 else None,
        pose=Pose(yaw, 0.0, 0.0) if faces else None,
        objects=(DetectedObject("cell phone", (0.0, 0.0, 9.0, 9.0), phone),) if phone else (),
        models={"detector": "d@1", "objects": "o@2"},
    )
    return AnalysisResult(job_id="j", status=OK, observation=obs.to_dict())


def feed(session_id: int, results: list[AnalysisResult]) -> list[list[dict]]:
    start = timezone.now().timestamp()
    return [
        session_record_result(
            session_id=session_id, seq=i + 1, received_at=start + 2 * i, result=r, frame=b"\xff\xd8"
        ).events
        for i, r in enumerate(results)
    ]


def test_a_flag_opens_with_confidence_threshold_model_version_and_a_snapshot(alice):
    start = session_open(attempt_id=attempt_of(alice).pk, user=alice)
    events = feed(start.session_id, [seen(phone=0.7), seen(phone=0.9), seen(phone=0.8)])
    flag = Flag.objects.get()
    assert [e.get("flag_id") for e in events[2] if e["event"] == "PHONE_DETECTED"] == [flag.pk]
    assert (flag.kind, flag.status, flag.started_seq) == ("phone_detected", "open", 3)
    assert flag.confidence == pytest.approx(0.8) and flag.threshold == 0.5
    assert flag.model_version == "detector=d@1,objects=o@2"
    assert flag.details["settings"]["k"] == 3
    assert flag.snapshots.count() == 1


def test_accommodations_are_applied_for_bob_only(alice):
    bob = StudentFactory(username="bob")
    FaceTemplate.objects.create(
        user=bob, pack="default", model_id=current_embedding_model(pack="default")[1], embedding=b"", dim=0
    )
    attempt = attempt_of(bob)
    EnrollmentFactory(exam=attempt.exam, student=bob, accommodations={"looking_away": False})
    start = session_open(attempt_id=attempt.pk, user=bob)
    assert "looking_away" not in start.settings.checks
    feed(start.session_id, [seen(yaw=60.0)] * 5)
    assert Flag.objects.count() == 0


def test_server_timeouts_are_recorded_as_stream_health_not_against_alice(alice):
    start = session_open(attempt_id=attempt_of(alice, k=1, n=1).pk, user=alice)
    events = feed(start.session_id, [AnalysisResult(job_id="j", status=TIMEOUT)] * 3)
    assert events[0][0]["event"] == "ERROR" and events[1] == []  # the apology respects the cooldown
    session = ProctoringSession.objects.get()
    assert session.server_errors == 3 and Flag.objects.count() == 0 and Observation.objects.count() == 0
    assert StreamEvent.objects.filter(kind="server_error").count() == 3


def test_rescoring_the_stored_observations_reproduces_the_live_flags_and_follows_new_sensitivity(alice):
    start = session_open(attempt_id=attempt_of(alice).pk, user=alice)
    script = [seen(phone=0.45), seen(), seen(phone=0.45), seen(phone=0.45), seen(faces=0), seen(faces=0)]
    script += [seen(faces=0), seen(), seen(), seen(), seen(similarity=0.1), seen()]
    feed(start.session_id, script)
    session = ProctoringSession.objects.get()
    live = sorted((f.kind, f.started_seq, f.ended_seq) for f in Flag.objects.all())
    assert live == [("face_not_found", 7, 10)]

    records = frame_records_for_session(session=session)
    again = rules.rescore(records, rules.RuleSettings.from_dict(session.settings_snapshot))
    assert sorted((s.kind, s.started_seq, s.ended_seq) for s in again) == live
    stricter = rules.rescore(records, rules.RuleSettings(phone_threshold=0.4, k=2, n=3))
    assert ("phone_detected", 3) in [(s.kind, s.started_seq) for s in stricter]


def test_ending_the_attempt_ends_its_session(alice):
    attempt = attempt_of(alice)
    start = session_open(attempt_id=attempt.pk, user=alice)
    assert session_end_for_attempt(attempt=attempt) is True
    assert ProctoringSession.objects.get(pk=start.session_id).status == "ended"
    # A new connection for the same attempt is refused once it is submitted.
    Attempt.objects.filter(pk=attempt.pk).update(status=Attempt.Status.SUBMITTED)
    with pytest.raises(SessionRefused) as refused:
        session_open(attempt_id=attempt.pk, user=alice)
    assert refused.value.code == 4409


def test_a_frame_ends_the_session_once_humans_confirmed_as_many_flags_as_the_exam_allows(alice):
    start = session_open(attempt_id=attempt_of(alice, k=1, n=1, end_after_confirmed=1).pk, user=alice)
    feed(start.session_id, [seen(phone=0.9), seen()])
    assert ProctoringSession.objects.get().status == "active"  # an open flag alone never ends anything
    Flag.objects.update(status=Flag.Status.CONFIRMED)  # a reviewer confirmed it
    outcome = session_record_result(
        session_id=start.session_id, seq=3, received_at=timezone.now().timestamp() + 10, result=seen(), frame=b""
    )
    assert outcome.ended == "violations"
    session = ProctoringSession.objects.get()
    assert (session.status, session.end_reason, session.frames_analysed) == ("ended", "violations", 3)


def test_a_frame_after_the_deadline_ends_the_session_as_attempt_closed(alice):
    attempt = attempt_of(alice)
    start = session_open(attempt_id=attempt.pk, user=alice)
    Attempt.objects.filter(pk=attempt.pk).update(deadline=timezone.now() - timedelta(hours=1))
    outcome = session_record_result(
        session_id=start.session_id, seq=1, received_at=timezone.now().timestamp(), result=seen(), frame=b""
    )
    assert outcome.ended == "attempt_closed"
    assert ProctoringSession.objects.get().status == "ended"


def test_one_open_session_per_attempt_is_a_database_invariant(alice):
    from django.db import IntegrityError

    attempt = attempt_of(alice)
    session_open(attempt_id=attempt.pk, user=alice)
    with pytest.raises(IntegrityError):
        ProctoringSession.objects.create(attempt=attempt, started_at=timezone.now())


def test_the_enrolled_face_travels_as_plain_floats(alice):
    FaceTemplate.objects.filter(user=alice).update(embedding=np.array([0.6, 0.8], "<f4").tobytes(), neutral_yaw=4.0)
    start = session_open(attempt_id=attempt_of(alice).pk, user=alice)
    assert start.enrolled.embedding == pytest.approx((0.6, 0.8))
    assert start.enrolled.neutral.yaw == 4.0


def test_a_flag_keeps_every_model_version_in_full_and_shows_the_pack_first():
    long = {"pack": "default@2026.11.4", "detector": "blazeface@full-range+short-range-fallback" * 3,
            "embedder": "arcface_onnx@faceplugin-0.0.1", "objects": "ssd_coco_openvino@ssd-mobilenet-v2-coco-2018",
            "pose": "facemesh_pose@face-mesh"}  # fmt: skip
    version = model_version_of(long)
    assert len(version) > 200 and version.endswith("pose=facemesh_pose@face-mesh")
    flag = Flag(model_version=version)
    assert flag.model_version_label == "default@2026.11.4"
    assert Flag(model_version="detector=d@1,objects=o@2").model_version_label == "detector=d@1,objects=o@2"
    assert len(Flag(model_version="x" * 300).model_version_label) == 40


def test_a_live_identity_flag_ends_where_the_other_person_was_last_seen_and_says_why(alice):
    """Issue 11, through the real session service: someone else, then nobody, then two people, then alice."""
    start = session_open(attempt_id=attempt_of(alice).pk, user=alice)
    script = [seen(similarity=0.1)] * 5 + [seen(faces=0)] * 4 + [seen(faces=2)] * 4 + [seen()] * 4
    feed(start.session_id, script)
    flags = {f.kind: f for f in Flag.objects.all()}
    identity = flags["identity_mismatch"]
    assert (identity.started_seq, identity.ended_seq) == (3, 5)
    assert identity.details["ended_because"] == "unknown"
    assert {"face_not_found", "multiple_faces"} <= set(flags)
    session = ProctoringSession.objects.get()
    again = rules.rescore(
        frame_records_for_session(session=session), rules.RuleSettings.from_dict(session.settings_snapshot)
    )
    assert {(s.kind, s.started_seq, s.ended_seq) for s in again if s.kind == "identity_mismatch"} == {
        ("identity_mismatch", 3, 5)}  # fmt: skip
