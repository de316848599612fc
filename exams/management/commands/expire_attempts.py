"""Expire every attempt past its deadline. Run it every minute from cron or a systemd timer in production.

Pages expire an overdue attempt lazily when it is touched; this command closes the ones nobody touches again (a
closed laptop), which grades them and ends their proctoring session.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from exams.services import attempts_expire_overdue


class Command(BaseCommand):
    help = "Expire every in-progress attempt past its deadline (grades it and ends its proctoring session)."

    def handle(self, *args, **options) -> None:
        count = attempts_expire_overdue()
        self.stdout.write(f"Expired {count} overdue attempt{'' if count == 1 else 's'}.")
