"""Housekeeping that runs by itself: expire overdue attempts and send the LMS grades still waiting (every minute),
and purge evidence past its retention (once a day). All are idempotent, so two schedulers running at once do no
harm.

Two schedulers, chosen by HOUSEKEEPING:
- ``inprocess`` (default): a daemon thread in each ASGI server process (`make demo`, a single box). It starts with
  the server (examsite/asgi.py) and stops with it.
- ``beat``: Celery beat, for scaled-out deployments. Run exactly one `celery -A examsite beat` per deployment and a
  worker on the `housekeeping` queue (README, "Scale-out"). The tasks below are what beat schedules.
- ``off``: neither (tests; or cron running `manage.py expire_attempts` and `manage.py purge_evidence`).
"""

from __future__ import annotations

import logging
import threading
import time

from celery import shared_task
from django.conf import settings
from django.db import close_old_connections

from exams.lti.services import grades_retry
from exams.services import attempts_expire_overdue
from proctoring.services.consent import consent_retention_days
from proctoring.services.retention import evidence_purge

log = logging.getLogger(__name__)

PURGE_EVERY_S = 24 * 3600
_started = threading.Event()


@shared_task(name="housekeeping.expire_attempts", ignore_result=True)
def expire_attempts() -> int:
    count = attempts_expire_overdue()
    if count:
        log.info("housekeeping: expired %s overdue attempt(s)", count)
    return count


@shared_task(name="housekeeping.send_lms_grades", ignore_result=True)
def send_lms_grades() -> int:
    """Grades the LMS did not take (it was down, or slow): tried again, each at most MAX_GRADE_TRIES times."""
    grades = grades_retry()
    if grades:
        log.info("housekeeping: sent %s waiting LMS grade(s)", sum(1 for g in grades if g.status == "sent"))
    return len(grades)


@shared_task(name="housekeeping.purge_evidence", ignore_result=True)
def purge_evidence() -> int:
    report = evidence_purge(older_than_days=consent_retention_days())
    if report.sessions:
        log.info("housekeeping: purged the evidence of %s session(s) past retention", report.sessions)
    return report.sessions


def _loop(every_s: float) -> None:
    next_purge = time.monotonic() + min(300.0, every_s * 5)  # not in the middle of start-up
    while True:
        jobs = ((expire_attempts, True), (send_lms_grades, True), (purge_evidence, time.monotonic() >= next_purge))
        for job, due in jobs:
            if not due:
                continue
            try:
                job()
            except Exception:  # noqa: BLE001 - a failed run (a database outage) is retried on the next tick
                log.exception("housekeeping: %s failed; retrying in %s s", job.name, every_s)
            finally:
                close_old_connections()
            if job is purge_evidence:
                next_purge = time.monotonic() + PURGE_EVERY_S
        time.sleep(every_s)


def start_in_process() -> bool:
    """Start the in-process scheduler once per process when HOUSEKEEPING is ``inprocess``; True if it runs."""
    if settings.HOUSEKEEPING != "inprocess":
        return False
    if _started.is_set():
        return True
    _started.set()
    threading.Thread(
        target=_loop, args=(float(settings.HOUSEKEEPING_EVERY_S),), daemon=True, name="housekeeping"
    ).start()
    log.info("housekeeping: in-process scheduler every %s s", settings.HOUSEKEEPING_EVERY_S)
    return True
