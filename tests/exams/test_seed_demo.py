from __future__ import annotations

from datetime import timedelta
from io import StringIO

from django.core.management import call_command
from django.utils import timezone

from accounts.models import User
from exams.models import Attempt, Choice, Enrollment, Exam, Question
from tests.conftest import sign_in
from tests.factories import proctoring_ready


def _seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def _snapshot():
    return (
        list(User.objects.order_by("username").values_list("username", "role", "password", "is_superuser")),
        list(Exam.objects.values_list("id", "title", "opens_at", "closes_at", "published", "proctoring_enabled")),
        list(Question.objects.values_list("id", "kind", "text")),
        Choice.objects.count(),
        list(Enrollment.objects.values_list("exam_id", "student__username")),
    )


def test_it_creates_the_demo_users_and_an_open_exam(db, client):
    output = _seed("--password", "s3cret-demo")
    assert "student1" in output and "s3cret-demo" in output
    admin = User.objects.get(username="admin")
    assert admin.role == User.Role.ADMIN and admin.is_superuser and admin.is_staff
    assert User.objects.get(username="instructor").role == User.Role.INSTRUCTOR
    exam = Exam.objects.get(title="Demo exam")
    now = timezone.now()
    assert exam.published and exam.proctoring_enabled and exam.duration_minutes == 30
    assert exam.opens_at < now < exam.closes_at
    assert set(exam.questions.values_list("kind", flat=True)) == set(Question.Kind.values)
    assert set(exam.enrollments.values_list("student__username", flat=True)) == {"student1", "student2", "student3"}
    assert sign_in(client, "student1", "s3cret-demo")


def test_running_it_twice_changes_nothing(db):
    _seed()
    before = _snapshot()
    output = _seed("--password", "another-one")
    assert _snapshot() == before
    assert "password unchanged" in output


def test_a_second_run_reopens_a_demo_exam_whose_window_has_closed(db):
    _seed()
    Exam.objects.update(opens_at=timezone.now() - timedelta(days=40), closes_at=timezone.now() - timedelta(days=10))
    _seed()
    exam = Exam.objects.get(title="Demo exam")
    assert exam.opens_at < timezone.now() < exam.closes_at
    assert Exam.objects.count() == 2  # the demo exam and the identity demo exam, each once


def test_the_identity_demo_exam_asks_for_a_photo_id_and_a_match(db):
    _seed()
    exam = Exam.objects.get(title="Identity demo exam")
    assert exam.published and exam.proctoring_enabled and exam.photo_id_required
    assert exam.identity_assurance == Exam.IdentityAssurance.MATCHED
    assert set(exam.enrollments.values_list("student__username", flat=True)) == {"student1", "student2", "student3"}
    assert exam.questions.count() == Exam.objects.get(title="Demo exam").questions.count()


def test_the_demo_exam_can_be_started_by_student1(db, client):
    _seed()
    assert sign_in(client, "student1", "demo-pass-123")
    exam = Exam.objects.get(title="Demo exam")
    assert exam.proctoring_enabled
    # The demo exam is proctored: student1 first consents and enrols, as the README's walkthrough says.
    proctoring_ready(User.objects.get(username="student1"))
    response = client.post(f"/exams/{exam.id}/start/")
    assert response["Location"] == f"/attempts/{Attempt.objects.get().id}/"


def test_student1_is_sent_to_consent_before_the_demo_exam_starts(db, client):
    _seed()
    assert sign_in(client, "student1", "demo-pass-123")
    exam = Exam.objects.get(title="Demo exam")
    response = client.post(f"/exams/{exam.id}/start/")
    # Consent, then enrolment, then the system check before Start.
    check = f"%252Fproctoring%252Fcheck%252Fexam%252F{exam.id}%252F"
    assert response["Location"] == f"/proctoring/consent/?next=%2Fproctoring%2Fenrol%2F%3Fnext%3D{check}"
    assert not Attempt.objects.exists()
