"""Snapshot evidence is private: only the exam's instructor and admins see it, never cached, always audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from exams.models import Attempt
from proctoring import rules
from proctoring.models import EvidenceView, ProctoringSession
from proctoring.services.evidence import snapshot_delete, snapshot_path
from proctoring.services.sessions import flag_open
from tests.factories import AdminFactory, ExamFactory, InstructorFactory, StudentFactory

pytestmark = pytest.mark.django_db

JPEG = b"\xff\xd8\xff\xe0" + b"evidence" * 100


@pytest.fixture(autouse=True)
def private_storage(settings, tmp_path):
    settings.PRIVATE_STORAGE_DIR = tmp_path / "private"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return settings.PRIVATE_STORAGE_DIR


@pytest.fixture
def charlie():
    return InstructorFactory(username="charlie")


@pytest.fixture
def snapshot(charlie):
    alice = StudentFactory(username="alice")
    exam = ExamFactory(owner=charlie)
    now = timezone.now()
    attempt = Attempt.objects.create(exam=exam, student=alice, started_at=now, deadline=now + timedelta(hours=1))
    session = ProctoringSession.objects.create(attempt=attempt, started_at=now)
    opened = rules.FlagOpen(kind="phone_detected", seq=3, at=now.timestamp(), confidence=0.9, threshold=0.5, details={})
    flag = flag_open(session=session, opened=opened, model_version="v1", frame=JPEG, width=640, height=480)
    return flag.snapshots.get()


def test_the_owning_instructor_gets_the_jpeg_uncached_and_the_view_is_audited(client, charlie, snapshot):
    client.force_login(charlie)
    response = client.get(reverse("proctoring:snapshot", args=[snapshot.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert b"".join(response) == JPEG
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]
    [view] = EvidenceView.objects.all()
    assert (view.viewer, view.snapshot, view.attempt_id) == (charlie, snapshot, snapshot.flag.session.attempt_id)


def test_an_admin_may_view_it(client, snapshot):
    client.force_login(AdminFactory(username="dana"))
    assert client.get(reverse("proctoring:snapshot", args=[snapshot.pk])).status_code == 200


def test_another_instructor_is_refused_and_nothing_is_audited(client, snapshot):
    client.force_login(InstructorFactory(username="erin"))
    assert client.get(reverse("proctoring:snapshot", args=[snapshot.pk])).status_code == 403
    assert EvidenceView.objects.count() == 0


def test_the_student_herself_is_refused(client, snapshot):
    client.force_login(snapshot.flag.session.attempt.student)
    assert client.get(reverse("proctoring:snapshot", args=[snapshot.pk])).status_code == 403


def test_a_visitor_is_sent_to_sign_in(client, snapshot):
    response = client.get(reverse("proctoring:snapshot", args=[snapshot.pk]))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_an_unknown_snapshot_is_404(client, charlie, snapshot):
    client.force_login(charlie)
    assert client.get(reverse("proctoring:snapshot", args=[snapshot.pk + 1000])).status_code == 404


def test_a_purged_file_is_404_not_a_crash(client, charlie, snapshot):
    snapshot_path(snapshot=snapshot).unlink()
    client.force_login(charlie)
    assert client.get(reverse("proctoring:snapshot", args=[snapshot.pk])).status_code == 404


def test_snapshots_live_in_private_storage_with_random_names_and_owner_only_permissions(private_storage, snapshot):
    path = snapshot_path(snapshot=snapshot)
    assert private_storage.resolve() in path.parents
    assert len(path.stem) >= 32  # 24 random bytes, URL-safe: unguessable
    assert path.stat().st_mode & 0o777 == 0o600


def test_deleting_a_snapshot_removes_its_file_and_keeps_the_audit_trail(client, charlie, snapshot):
    client.force_login(charlie)
    client.get(reverse("proctoring:snapshot", args=[snapshot.pk]))
    path, pk = snapshot_path(snapshot=snapshot), snapshot.pk
    snapshot_delete(snapshot=snapshot)
    assert not path.exists()
    [view] = EvidenceView.objects.all()
    assert view.snapshot is None and view.snapshot_ref == f"snapshot:{pk}"
