"""Send the grades still waiting for the LMS or failed (AGS), for a periodic job (cron, a systemd timer): each is
tried at most MAX_GRADE_TRIES times by this command; the exam's LMS page can always send again."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from exams.lti.models import GradeSend
from exams.lti.services import MAX_GRADE_TRIES, grades_retry


class Command(BaseCommand):
    help = f"Send waiting or failed LMS grades (each at most {MAX_GRADE_TRIES} times)."

    def handle(self, *args: Any, **options: Any) -> None:
        grades = grades_retry()
        sent = sum(1 for g in grades if g.status == GradeSend.Status.SENT)
        self.stdout.write(f"{sent} grade(s) sent, {len(grades) - sent} failed.")
        for grade in grades:
            if grade.status != GradeSend.Status.SENT:
                self.stdout.write(f"  attempt {grade.attempt_id}: try {grade.tries}: {grade.last_error}")
