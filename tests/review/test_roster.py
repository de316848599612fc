"""The live monitor's roster (issue 12): every student of the exam, streaming or not, in one state each, with open
flags and review priority, read in a fixed number of queries whatever the class size."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from exams.models import Attempt
from proctoring.models import Flag, Observation, ProctoringSession, StreamEvent
from proctoring.review.selectors import ROSTER_STATES, exam_roster
from tests.factories import EnrollmentFactory, StudentFactory

pytestmark = pytest.mark.django_db


def attempt_of(exam, student, status=Attempt.Status.IN_PROGRESS, *, minutes_left=60) -> Attempt:
    now = timezone.now()
    return Attempt.objects.create(exam=exam, student=student, status=status, started_at=now - timedelta(minutes=5),
                                  deadline=now + timedelta(minutes=minutes_left))  # fmt: skip


def session_of(attempt, *, frames=True, last=None, status=ProctoringSession.Status.ACTIVE) -> ProctoringSession:
    now = timezone.now()
    session = ProctoringSession.objects.create(attempt=attempt, started_at=now, status=status,
                                               last_frame_at=now if frames else None)  # fmt: skip
    StreamEvent.objects.create(session=session, kind=StreamEvent.Kind.CONNECTED, at=now - timedelta(seconds=30))
    if last:
        StreamEvent.objects.create(session=session, kind=last, at=now)
    return session


def test_every_student_of_the_exam_has_one_state(exam):
    names = ["ann", "ben", "cat", "dan", "eve", "fay", "gus", "hal"]
    students = {n: StudentFactory(username=n, first_name=n.title(), last_name="") for n in names}
    for student in students.values():
        EnrollmentFactory(exam=exam, student=student)
    # ann has not started; ben is setting up (no proctoring yet); cat streams; dan's stream paused; eve dropped off;
    # fay submitted; gus's time ran out; hal's session ended while the attempt is open (ended by the rules).
    attempt_of(exam, students["ben"])
    session_of(attempt_of(exam, students["cat"]))
    session_of(attempt_of(exam, students["dan"]), last=StreamEvent.Kind.STALLED)
    session_of(attempt_of(exam, students["eve"]), last=StreamEvent.Kind.DISCONNECTED)
    session_of(attempt_of(exam, students["fay"], Attempt.Status.SUBMITTED), status=ProctoringSession.Status.ENDED)
    session_of(attempt_of(exam, students["gus"], minutes_left=-1))
    session_of(attempt_of(exam, students["hal"]), status=ProctoringSession.Status.ENDED)
    states = {t["student"]: t["state"] for t in exam_roster(exam=exam)}
    assert states == {"Ann": "not_started", "Ben": "setting_up", "Cat": "connected", "Dan": "stalled",
                      "Eve": "disconnected", "Fay": "submitted", "Gus": "ended", "Hal": "ended"}  # fmt: skip
    assert set(states.values()) == set(ROSTER_STATES)


def test_a_recovered_stream_is_connected_again_and_a_connected_student_without_frames_is_setting_up(exam, alice, bob):
    EnrollmentFactory(exam=exam, student=alice)
    EnrollmentFactory(exam=exam, student=bob)
    session = session_of(attempt_of(exam, alice), last=StreamEvent.Kind.STALLED)
    StreamEvent.objects.create(
        session=session, kind=StreamEvent.Kind.RECOVERED, at=timezone.now() + timedelta(seconds=1)
    )
    session_of(attempt_of(exam, bob), frames=False)
    assert {t["student"]: t["state"] for t in exam_roster(exam=exam)} == {
        "Alice Adams": "connected", "Bob Brown": "setting_up"}  # fmt: skip


def test_a_tile_carries_attention_conditions_open_flags_and_priority(exam, alice):
    EnrollmentFactory(exam=exam, student=alice)
    session = session_of(attempt_of(exam, alice))
    now = timezone.now()
    Observation.objects.create(session=session, seq=1, captured_at=now, attention=30,
                               signals=["AUTHORIZED", "PHONE_DETECTED"])  # fmt: skip
    phone = Flag.objects.create(session=session, kind="phone_detected", started_at=now, confidence=1.0, threshold=0.5)
    Flag.objects.create(session=session, kind="looking_away", started_at=now, confidence=1.0, threshold=30,
                        status=Flag.Status.DISMISSED)  # fmt: skip
    (tile,) = exam_roster(exam=exam)
    assert (tile["attention"], tile["label"]) == (30, "Away")
    assert tile["conditions"] == ["AUTHORIZED", "PHONE_DETECTED"]
    assert [(f["event"], f["flag_id"]) for f in tile["open_flags"]] == [("PHONE_DETECTED", phone.pk)]
    assert tile["priority"] == 4.0  # a phone at full confidence; the dismissed flag counts for nothing


def test_the_roster_of_200_students_takes_a_fixed_number_of_queries(exam, django_assert_max_num_queries):
    for i in range(200):
        student = StudentFactory(username=f"s{i:03d}")
        EnrollmentFactory(exam=exam, student=student)
        if i % 2:
            session_of(attempt_of(exam, student))
    with django_assert_max_num_queries(5):
        tiles = exam_roster(exam=exam)
    assert len(tiles) == 200
