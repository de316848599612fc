"""Housekeeping runs by itself (examsite/housekeeping.py): an overdue attempt closes without anyone touching it, in a
real daphne with the in-process scheduler; and the Celery beat schedule names real tasks on their own queue."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from exams.models import Attempt
from examsite import housekeeping
from examsite.celery import app
from tests.browser import free_port, wait_for_port
from tests.factories import ExamFactory, StudentFactory
from tests.servers import log_tail, manage, server_database, server_env, start_daphne, stop_process

OVERDUE = (
    "from datetime import timedelta; from django.utils import timezone; from exams.models import Attempt; "
    "from tests.factories import ExamFactory, StudentFactory; now = timezone.now(); "
    "a = Attempt.objects.create(exam=ExamFactory(), student=StudentFactory(), started_at=now - timedelta(hours=2), "
    "deadline=now - timedelta(minutes=5)); print(a.pk)"
)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_an_overdue_attempt_closes_with_nobody_touching_it(tmp_path):
    log = tmp_path / "daphne.log"
    with server_database(tmp_path, "housekeeping") as database_url:
        env = server_env(
            ALLOWED_HOSTS="127.0.0.1", DATABASE_URL=database_url, HOUSEKEEPING="inprocess", HOUSEKEEPING_EVERY_S="1"
        )
        manage(env, "migrate", "--noinput", "-v", "0")
        attempt_id = int(manage(env, "shell", "-c", OVERDUE).strip().splitlines()[-1])
        port = free_port()
        server = start_daphne(env, port, log)
        try:
            wait_for_port(port, server, log)
            deadline = time.monotonic() + 30
            status = "in_progress"
            while time.monotonic() < deadline and status == "in_progress":
                time.sleep(1.0)
                out = manage(env, "shell", "-c", f"from exams.models import Attempt; "
                             f"print(Attempt.objects.get(pk={attempt_id}).status)")  # fmt: skip
                status = out.strip().splitlines()[-1]
            assert status == "expired", log_tail(log)
        finally:
            stop_process(server)


def test_the_beat_schedule_names_registered_tasks_on_the_housekeeping_queue():
    names = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert names == {"housekeeping.expire_attempts", "housekeeping.send_lms_grades", "housekeeping.purge_evidence"}
    app.loader.import_default_modules()
    for name in names:
        assert name in app.tasks
        assert app.amqp.router.route({}, name)["queue"].name == "housekeeping"
    assert app.amqp.router.route({}, "proctoring.tasks.analyze_frame")["queue"].name == "inference"


@pytest.mark.django_db
def test_the_scheduled_tasks_do_the_work():
    now = timezone.now()
    overdue = Attempt.objects.create(
        exam=ExamFactory(), student=StudentFactory(), started_at=now - timedelta(hours=2), deadline=now - timedelta(1)
    )
    assert housekeeping.expire_attempts.apply().get() == 1
    overdue.refresh_from_db()
    assert overdue.status == Attempt.Status.EXPIRED
    assert housekeeping.purge_evidence.apply().get() == 0
    assert housekeeping.send_lms_grades.apply().get() == 0  # no LMS grade waiting


def test_the_in_process_scheduler_is_off_unless_asked(settings):
    settings.HOUSEKEEPING = "off"
    assert housekeeping.start_in_process() is False
    settings.HOUSEKEEPING = "beat"
    assert housekeeping.start_in_process() is False
