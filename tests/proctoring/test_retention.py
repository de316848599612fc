"""Retention: evidence older than the notice promises is deleted, files after the commit, in batches, with counts."""

from __future__ import annotations

import os
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from exams.models import Attempt
from proctoring.models import EvidenceView, FaceTemplate, Flag, Observation, ProctoringSession, Snapshot
from proctoring.services.evidence import SNAPSHOT_DIR, snapshot_path, snapshot_store
from proctoring.services.retention import evidence_purge
from tests.factories import ExamFactory, InstructorFactory, StudentFactory

# Real commits, so that transaction.on_commit runs as it does in production.
pytestmark = pytest.mark.django_db(transaction=True)

JPEG = b"\xff\xd8\xff\xe0" + b"evidence" * 100
NOW = timezone.now()


@pytest.fixture(autouse=True)
def private_storage(settings, tmp_path):
    settings.PRIVATE_STORAGE_DIR = tmp_path / "private"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return settings.PRIVATE_STORAGE_DIR


@pytest.fixture
def ivan():
    return InstructorFactory(username="ivan")


def sat_exam(student, *, days_ago: float, snapshots: int = 1, observations: int = 3, ended: bool = True):
    """An attempt of `student` that started and ended `days_ago` days ago, with a flag, its snapshots (real files)
    and per-frame observations."""
    at = NOW - timedelta(days=days_ago)
    exam = ExamFactory(opens_at=at - timedelta(hours=1), closes_at=at + timedelta(hours=2))
    number = Attempt.objects.filter(student=student).count() + 1
    attempt = Attempt.objects.create(
        exam=exam,
        student=student,
        number=number,
        status=Attempt.Status.SUBMITTED,
        started_at=at,
        deadline=at + timedelta(hours=1),
        submitted_at=at + timedelta(minutes=50),
    )
    session = ProctoringSession.objects.create(
        attempt=attempt,
        status=ProctoringSession.Status.ENDED if ended else ProctoringSession.Status.ACTIVE,
        started_at=at,
        ended_at=at + timedelta(minutes=50) if ended else None,
    )
    flag = Flag.objects.create(
        session=session, kind=Flag.Kind.PHONE_DETECTED, started_at=at, confidence=0.9, threshold=0.5
    )
    for _ in range(snapshots):
        snapshot_store(flag=flag, data=JPEG, width=640, height=480, taken_at=at)
    for seq in range(observations):
        Observation.objects.create(session=session, seq=seq, captured_at=at + timedelta(seconds=2 * seq))
    return session


def enrolled(student, *, days_ago: float) -> FaceTemplate:
    template = FaceTemplate.objects.create(user=student, pack="default", model_id="m", embedding=b"\0" * 16, dim=4)
    FaceTemplate.objects.filter(pk=template.pk).update(updated_at=NOW - timedelta(days=days_ago))
    return template


def files_of(session) -> list:
    return [snapshot_path(snapshot=s) for s in Snapshot.objects.filter(flag__session=session)]


def test_alices_old_session_loses_snapshots_observations_and_face_template_but_keeps_its_flag():
    alice = StudentFactory(username="alice")
    enrolled(alice, days_ago=120)
    session = sat_exam(alice, days_ago=100, snapshots=2, observations=4)
    files = files_of(session)
    assert all(path.exists() for path in files)

    report = evidence_purge(older_than_days=90, now=NOW)

    assert not any(path.exists() for path in files)
    assert not Snapshot.objects.exists()
    assert not Observation.objects.exists()
    assert not FaceTemplate.objects.filter(user=alice).exists()
    assert Flag.objects.filter(session=session).count() == 1
    assert (report.sessions, report.snapshots, report.files_deleted, report.files_missing) == (1, 2, 2, 0)
    assert (report.observations, report.face_templates, report.orphan_files) == (4, 1, 0)
    assert report.cutoff == NOW - timedelta(days=90)


def test_bobs_session_inside_the_window_is_left_alone():
    bob = StudentFactory(username="bob")
    enrolled(bob, days_ago=30)
    session = sat_exam(bob, days_ago=10, snapshots=1, observations=2)

    report = evidence_purge(older_than_days=90, now=NOW)

    assert all(path.exists() for path in files_of(session))
    assert Observation.objects.filter(session=session).count() == 2
    assert FaceTemplate.objects.filter(user=bob).exists()
    assert (report.sessions, report.snapshots, report.observations, report.face_templates) == (0, 0, 0, 0)


def test_charlies_template_stays_while_he_sat_an_exam_inside_the_window():
    charlie = StudentFactory(username="charlie")
    enrolled(charlie, days_ago=200)
    old = sat_exam(charlie, days_ago=150)
    recent = sat_exam(charlie, days_ago=5)

    evidence_purge(older_than_days=90, now=NOW)

    assert FaceTemplate.objects.filter(user=charlie).exists()
    assert not Snapshot.objects.filter(flag__session=old).exists()
    assert Snapshot.objects.filter(flag__session=recent).exists()


def test_a_template_made_inside_the_window_stays_before_its_first_exam():
    dora = StudentFactory(username="dora")
    enrolled(dora, days_ago=3)
    assert evidence_purge(older_than_days=90, now=NOW).face_templates == 0
    assert FaceTemplate.objects.filter(user=dora).exists()


def test_a_session_never_closed_is_purged_once_its_attempt_is_over():
    alice = StudentFactory(username="alice")
    session = sat_exam(alice, days_ago=100, ended=False)
    assert evidence_purge(older_than_days=90, now=NOW).snapshots == 1
    assert not Snapshot.objects.filter(flag__session=session).exists()


def test_a_dry_run_counts_and_deletes_nothing():
    alice = StudentFactory(username="alice")
    enrolled(alice, days_ago=120)
    session = sat_exam(alice, days_ago=100, snapshots=3, observations=5)

    report = evidence_purge(older_than_days=90, now=NOW, dry_run=True)

    assert report.dry_run
    assert (report.sessions, report.snapshots, report.observations, report.face_templates) == (1, 3, 5, 1)
    assert report.files_deleted == 0
    assert all(path.exists() for path in files_of(session))
    assert Snapshot.objects.count() == 3 and Observation.objects.count() == 5 and FaceTemplate.objects.count() == 1


def test_a_file_already_gone_is_not_an_error():
    alice = StudentFactory(username="alice")
    session = sat_exam(alice, days_ago=100, snapshots=2)
    files_of(session)[0].unlink()

    report = evidence_purge(older_than_days=90, now=NOW)

    assert (report.snapshots, report.files_deleted, report.files_missing) == (2, 1, 1)
    assert not Snapshot.objects.exists()


def test_files_stay_when_the_transaction_that_deleted_their_rows_rolls_back():
    alice = StudentFactory(username="alice")
    session = sat_exam(alice, days_ago=100, snapshots=2)
    files = files_of(session)

    with pytest.raises(RuntimeError):
        with transaction.atomic():
            evidence_purge(older_than_days=90, now=NOW)
            raise RuntimeError("the surrounding transaction fails")

    assert Snapshot.objects.count() == 2
    assert all(path.exists() for path in files)


def test_it_deletes_in_batches(private_storage):
    alice = StudentFactory(username="alice")
    sat_exam(alice, days_ago=100, snapshots=5, observations=7)

    with CaptureQueriesContext(connection) as queries:
        report = evidence_purge(older_than_days=90, now=NOW, batch_size=2)

    snapshot_table = Snapshot._meta.db_table
    observation_table = Observation._meta.db_table
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert sum(1 for sql in deletes if f'FROM "{snapshot_table}"' in sql) == 3  # 2 + 2 + 1
    assert sum(1 for sql in deletes if f'FROM "{observation_table}"' in sql) == 4  # 2 + 2 + 2 + 1
    assert (report.snapshots, report.files_deleted, report.observations) == (5, 5, 7)
    assert not list((private_storage / SNAPSHOT_DIR).rglob("*.jpg"))


def test_orphaned_files_older_than_the_window_go_and_recent_ones_stay(private_storage):
    directory = private_storage / SNAPSHOT_DIR / "ab"
    directory.mkdir(parents=True)
    old, fresh = directory / "old-orphan.jpg", directory / "fresh-orphan.jpg"
    for path in (old, fresh):
        path.write_bytes(JPEG)
    stamp = (NOW - timedelta(days=100)).timestamp()
    os.utime(old, (stamp, stamp))
    # A file with a row, as old as the orphan, belongs to a session inside the window: it stays.
    bob = StudentFactory(username="bob")
    kept = files_of(sat_exam(bob, days_ago=10))[0]
    os.utime(kept, (stamp, stamp))

    assert evidence_purge(older_than_days=90, now=NOW, dry_run=True).orphan_files == 1
    assert old.exists()
    assert evidence_purge(older_than_days=90, now=NOW).orphan_files == 1
    assert not old.exists() and fresh.exists() and kept.exists()


def test_the_audit_log_of_who_viewed_the_evidence_survives(ivan):
    alice = StudentFactory(username="alice")
    session = sat_exam(alice, days_ago=100)
    snapshot = Snapshot.objects.get(flag__session=session)
    EvidenceView.objects.create(
        viewer=ivan, snapshot=snapshot, snapshot_ref=f"snapshot:{snapshot.pk}", attempt_id=session.attempt_id
    )

    evidence_purge(older_than_days=90, now=NOW)

    view = EvidenceView.objects.get()
    assert view.snapshot is None and view.snapshot_ref == f"snapshot:{snapshot.pk}"


@pytest.mark.parametrize("days", [0, -5])
def test_a_window_under_one_day_is_refused(days):
    with pytest.raises(ValueError, match="at least 1"):
        evidence_purge(older_than_days=days)


def test_the_command_purges_with_the_configured_days_and_reports_counts(settings):
    settings.PROCTORING_RETENTION_DAYS = 30
    alice = StudentFactory(username="alice")
    gone = sat_exam(alice, days_ago=40, snapshots=2, observations=3)
    kept = sat_exam(alice, days_ago=20)
    out = StringIO()

    call_command("purge_evidence", stdout=out)

    text = out.getvalue()
    assert "Deleted the evidence of 1 session(s)" in text and "(30 days)" in text
    assert "snapshots: 2" in text and "snapshot files: 2 deleted, 0 already gone" in text
    assert "observations: 3" in text
    assert not Snapshot.objects.filter(flag__session=gone).exists()
    assert Snapshot.objects.filter(flag__session=kept).exists()


def test_the_command_dry_run_and_days_option():
    alice = StudentFactory(username="alice")
    session = sat_exam(alice, days_ago=40, snapshots=2)
    out = StringIO()

    call_command("purge_evidence", "--days", "30", "--dry-run", stdout=out)

    assert "Would delete the evidence of 1 session(s)" in out.getvalue()
    assert "snapshots: 2" in out.getvalue()
    assert Snapshot.objects.filter(flag__session=session).count() == 2


def test_the_command_refuses_a_zero_day_window_clearly():
    with pytest.raises(CommandError, match="at least 1"):
        call_command("purge_evidence", "--days", "0", stdout=StringIO())
