"""The per-frame statements in plain SQL (proctoring/services/frame_rows.py) write and read exactly what the ORM
does, on the suite's database (PostgreSQL in CI, SQLite locally), and the row lock really holds a second writer."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from exams.models import Attempt
from proctoring.models import Observation, ProctoringSession
from proctoring.services import frame_rows
from tests.factories import ExamFactory, StudentFactory

OBSERVED = {
    "captured_at": datetime(2026, 11, 30, 9, 15, 2, 250_000, tzinfo=UTC),
    "face_count": 2,
    "face_scores": [0.93, 0.61],
    "identity_checked": True,
    "similarity": 0.21,
    "identity_threshold": 0.4,
    "identity_error": "",
    "yaw": -12.5,
    "pitch": 3.25,
    "gaze_yaw": None,
    "gaze_pitch": 1.5,
    "phone_score": 0.83,
    "other_objects": {"book": 0.55},
    "objects_from_seq": 7,
    "identity_from_seq": None,
    "attention": 40,
    "signals": ["multiple_faces", "phone"],
    "latency_ms": 118.4,
    "model_versions": {"detector": "blazeface@0.6.0", "objects": "ssd@2018"},
}


def alice_session(*, deadline_in: timedelta = timedelta(hours=1), **fields) -> ProctoringSession:
    alice = StudentFactory(username="alice")
    now = timezone.now()
    attempt = Attempt.objects.create(exam=ExamFactory(), student=alice, started_at=now, deadline=now + deadline_in)
    return ProctoringSession.objects.create(attempt=attempt, started_at=now, **fields)


def readable(observation: Observation) -> dict:
    row = model_to_dict(observation)
    row.pop("id")
    row.pop("seq")
    return row


@pytest.mark.django_db
def test_an_observation_written_here_reads_back_as_the_orm_writes_it():
    session = alice_session()
    frame_rows.observation_insert(session_id=session.pk, seq=8, **OBSERVED)
    Observation.objects.create(session=session, seq=9, **OBSERVED)
    mine, orms = Observation.objects.filter(session=session).order_by("seq")
    assert readable(mine) == readable(orms)
    assert (mine.seq, mine.captured_at, mine.other_objects) == (8, OBSERVED["captured_at"], {"book": 0.55})


@pytest.mark.django_db
def test_every_field_of_an_observation_must_be_given():
    # A field added to Observation later must be written here too: a forgotten one fails loudly, not as a default.
    session = alice_session()
    without_latency = {k: v for k, v in OBSERVED.items() if k != "latency_ms"}
    with pytest.raises(KeyError, match="latency_ms"):
        frame_rows.observation_insert(session_id=session.pk, seq=1, **without_latency)
    assert not Observation.objects.exists()


@pytest.mark.django_db
def test_the_lock_reads_the_session_and_its_attempt_as_the_orm_does():
    session = alice_session(state={"frames": [1, 2]}, settings_snapshot={"k": 3, "n": 5}, last_seq=41)
    with transaction.atomic():
        locked = frame_rows.session_lock(session.pk)
    assert locked.status == "active" and locked.end_reason == ""
    assert (locked.state, locked.settings_snapshot, locked.last_seq) == ({"frames": [1, 2]}, {"k": 3, "n": 5}, 41)
    assert locked.attempt.pk == session.attempt_id
    assert locked.attempt.deadline == session.attempt.deadline
    assert locked.attempt.is_live()


@pytest.mark.django_db
def test_an_attempt_past_its_deadline_reads_as_not_live():
    session = alice_session(deadline_in=-timedelta(hours=1))
    with transaction.atomic():
        assert not frame_rows.session_lock(session.pk).attempt.is_live()


@pytest.mark.django_db
def test_a_missing_session_raises_does_not_exist_as_get_would():
    with transaction.atomic(), pytest.raises(ProctoringSession.DoesNotExist):
        frame_rows.session_lock(999_999)


@pytest.mark.django_db
def test_the_frame_update_moves_the_counters_and_keeps_the_rest():
    session = alice_session(frames_analysed=4, frames_dropped=1, frames_shed=2, last_seq=4)
    at = datetime(2026, 11, 30, 9, 20, tzinfo=UTC)
    frame_rows.session_frame_update(session_id=session.pk, state={"open": ["phone"]}, dropped=2, last_frame_at=at,
                                    last_seq=5)  # fmt: skip
    session.refresh_from_db()
    assert (session.frames_analysed, session.frames_dropped, session.frames_shed) == (5, 3, 2)
    assert (session.state, session.last_frame_at, session.last_seq) == ({"open": ["phone"]}, at, 5)
    assert session.status == "active"


@pytest.mark.django_db(transaction=True)
def test_the_lock_holds_a_second_writer_of_the_same_session_until_the_first_commits():
    if not connection.features.has_select_for_update:
        pytest.skip("SQLite serialises writers with IMMEDIATE transactions, not row locks")
    session = alice_session()
    order: list[str] = []
    locked = threading.Event()

    def second_writer() -> None:
        locked.wait(5)
        with transaction.atomic():
            frame_rows.session_lock(session.pk)
            order.append("second has the row")
        connection.close()

    writer = threading.Thread(target=second_writer)
    writer.start()
    with transaction.atomic():
        frame_rows.session_lock(session.pk)
        locked.set()
        time.sleep(0.5)
        order.append("first commits")
    writer.join(5)
    assert order == ["first commits", "second has the row"]
