"""The admin lists flagged sessions with snapshot thumbnails (through the private view), filters, and flags inline."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from exams.models import Attempt
from proctoring import rules
from proctoring.models import EvidenceView, ProctoringSession
from proctoring.services.sessions import flag_open
from tests.factories import AdminFactory, ExamFactory, StudentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def private_storage(settings, tmp_path):
    settings.PRIVATE_STORAGE_DIR = tmp_path / "private"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def session_of(student, exam, *kinds: str) -> ProctoringSession:
    now = timezone.now()
    attempt = Attempt.objects.create(exam=exam, student=student, started_at=now, deadline=now + timedelta(hours=1))
    session = ProctoringSession.objects.create(attempt=attempt, started_at=now)
    for kind in kinds:
        opened = rules.FlagOpen(kind=kind, seq=1, at=now.timestamp(), confidence=0.8, threshold=0.5, details={})
        flag_open(session=session, opened=opened, model_version="m@1", frame=b"\xff\xd8\xff", width=64, height=48)
    return session


@pytest.fixture
def world():
    biology, chemistry = ExamFactory(title="Biology"), ExamFactory(title="Chemistry")
    return {
        "alice": session_of(StudentFactory(username="alice"), biology, "phone_detected"),
        "bob": session_of(StudentFactory(username="bob"), chemistry, "face_not_found"),
        "carol": session_of(StudentFactory(username="carol"), biology),
    }


@pytest.fixture
def dana(client):
    admin = AdminFactory(username="dana")
    client.force_login(admin)
    return admin


def listed(response) -> set[str]:
    return {s.attempt.student.username for s in response.context["cl"].result_list}


def test_the_admin_lists_flagged_sessions_with_private_thumbnails(client, dana, world):
    response = client.get(reverse("admin:proctoring_proctoringsession_changelist"))
    assert response.status_code == 200
    assert listed(response) == {"alice", "bob"}
    snapshot = world["alice"].flags.get().snapshots.get()
    assert f'src="{reverse("proctoring:snapshot", args=[snapshot.pk])}"' in response.content.decode()
    # Listing is not viewing: the audit entry comes when the browser fetches the image through the private view.
    assert EvidenceView.objects.count() == 0


def test_filters_by_exam_kind_and_status(client, dana, world):
    url = reverse("admin:proctoring_proctoringsession_changelist")
    exam_id = world["alice"].attempt.exam_id
    assert listed(client.get(url, {"attempt__exam__id__exact": exam_id})) == {"alice"}
    assert listed(client.get(url, {"flags__kind": "face_not_found"})) == {"bob"}
    assert listed(client.get(url, {"flags__status": "open"})) == {"alice", "bob"}
    assert listed(client.get(url, {"flagged": "all"})) == {"alice", "bob", "carol"}


def test_a_session_page_shows_its_flags_inline_with_evidence(client, dana, world):
    session = world["alice"]
    response = client.get(reverse("admin:proctoring_proctoringsession_change", args=[session.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Phone detected" in page
    assert reverse("proctoring:snapshot", args=[session.flags.get().snapshots.get().pk]) in page


def test_the_flag_list_filters_by_kind(client, dana, world):
    response = client.get(reverse("admin:proctoring_flag_changelist"), {"kind": "phone_detected"})
    assert [f.kind for f in response.context["cl"].result_list] == ["phone_detected"]


def test_the_evidence_audit_log_cannot_be_edited(client, dana, world):
    response = client.get(reverse("admin:proctoring_evidenceview_changelist"))
    assert response.status_code == 200
    assert "Add evidence view" not in response.content.decode()
