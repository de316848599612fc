"""Time zones: exam times are entered and shown in the instructor's zone and stored in UTC; students see their own
local time beside the exam's; exports name their zone. The zone is the person's own setting, else the one their
browser reports (the `tz` cookie from static/js/tz.js), else TIME_ZONE."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from django.test import Client

from exams.models import Exam
from tests.factories import ExamFactory, InstructorFactory, StudentFactory

pytestmark = pytest.mark.django_db

FORM = {
    "title": "Chemistry",
    "opens_at": "2030-01-10T09:00",
    "closes_at": "2030-01-10T12:00",
    "duration_minutes": "90",
    "max_attempts": "1",
    "proctoring_enabled": "on",
    "frame_interval_seconds": "2",
    "checks": ["identity_mismatch"],
    "sensitivity": "medium",
}


def browser_in(zone: str, user=None) -> Client:
    client = Client()
    client.cookies["tz"] = zone
    if user is not None:
        client.force_login(user)
    return client


def test_an_instructor_in_new_york_types_9_00_and_it_is_stored_as_14_00_utc():
    ivan = InstructorFactory()
    client = browser_in("America/New_York", ivan)
    form = client.get("/exams/new/").content.decode()
    assert "In your time zone, America/New_York" in form
    response = client.post("/exams/new/", FORM)
    assert response.status_code == 302
    exam = Exam.objects.get(title="Chemistry")
    assert exam.opens_at == datetime(2030, 1, 10, 14, 0, tzinfo=UTC)
    assert exam.time_zone == "America/New_York"
    # Shown back to him in his zone.
    page = client.get(f"/exams/{exam.pk}/edit/").content.decode()
    assert 'value="2030-01-10T09:00"' in page


def test_a_student_in_tokyo_sees_her_local_time_beside_the_exams():
    exam = ExamFactory(
        opens_at=datetime(2030, 1, 10, 14, 0, tzinfo=UTC),
        closes_at=datetime(2030, 1, 10, 17, 0, tzinfo=UTC),
        time_zone="America/New_York",
    )
    alice = StudentFactory()
    exam.enrollments.create(student=alice)
    page = browser_in("Asia/Tokyo", alice).get(f"/exams/{exam.pk}/").content.decode()
    # 14:00 UTC is 23:00 in Tokyo, and 09:00 in New York.
    assert "Thu 10 Jan 2030, 23:00 JST" in page
    assert "(09:00 EST in the exam's time zone, America/New_York)" in page
    assert 'datetime="2030-01-10T14:00:00+00:00"' in page


def test_a_student_in_the_exams_own_zone_sees_one_time():
    exam = ExamFactory(opens_at=datetime(2030, 1, 10, 14, 0, tzinfo=UTC), time_zone="America/New_York")
    alice = StudentFactory()
    exam.enrollments.create(student=alice)
    page = browser_in("America/New_York", alice).get(f"/exams/{exam.pk}/").content.decode()
    assert "Thu 10 Jan 2030, 09:00 EST" in page and "the exam's time zone" not in page


def test_a_persons_own_setting_wins_over_the_browser_and_a_bogus_cookie_is_ignored(settings):
    exam = ExamFactory(opens_at=datetime(2030, 1, 10, 14, 0, tzinfo=UTC), time_zone="UTC")
    alice = StudentFactory(time_zone="Europe/Berlin")
    exam.enrollments.create(student=alice)
    assert "15:00 CET" in browser_in("Asia/Tokyo", alice).get(f"/exams/{exam.pk}/").content.decode()
    bob = StudentFactory()
    exam.enrollments.create(student=bob)
    settings.TIME_ZONE = "UTC"
    page = browser_in("Not/AZone", bob).get(f"/exams/{exam.pk}/").content.decode()
    assert "14:00 UTC" in page


def test_exports_give_times_in_the_readers_zone_and_name_it(settings):
    from proctoring.models import ProctoringSession

    charlie = InstructorFactory()
    exam = ExamFactory(owner=charlie)
    alice = StudentFactory()
    attempt = exam.attempts.create(
        student=alice,
        started_at=datetime(2030, 1, 10, 14, 0, tzinfo=UTC),
        deadline=datetime(2030, 1, 10, 15, 0, tzinfo=UTC),
    )
    ProctoringSession.objects.create(attempt=attempt, started_at=attempt.started_at)
    response = browser_in("Europe/Berlin", charlie).get(f"/review/exams/{exam.pk}/export.csv")
    [row] = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert row["started_at"] == "2030-01-10T15:00:00+01:00" and row["time_zone"] == "Europe/Berlin"
