"""`python manage.py purge_evidence [--days N] [--dry-run]`: enforce the retention the consent notice states.

Deletes snapshots (files and rows), per-frame observations and stale face templates of sessions that ended more than
N days ago (default PROCTORING_RETENTION_DAYS), in batches; see proctoring.services.retention. Run it daily from cron
or a systemd timer; a run that stops half-way is finished by the next one.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from proctoring.services.consent import consent_retention_days
from proctoring.services.retention import BATCH_SIZE, evidence_purge


class Command(BaseCommand):
    help = "Delete proctoring evidence older than the retention period (PROCTORING_RETENTION_DAYS by default)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None, help="keep this many days (default: the setting)")
        parser.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="rows per transaction")

    def handle(self, *args, days: int | None, dry_run: bool, batch_size: int, **options):
        days = consent_retention_days() if days is None else days
        try:
            report = evidence_purge(older_than_days=days, dry_run=dry_run, batch_size=batch_size)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(
            f"{verb} the evidence of {report.sessions} session(s) that ended before "
            f"{report.cutoff:%Y-%m-%d %H:%M %Z} ({days} days):"
        )
        self.stdout.write(f"  snapshots: {report.snapshots}")
        if not dry_run:
            self.stdout.write(f"  snapshot files: {report.files_deleted} deleted, {report.files_missing} already gone")
        self.stdout.write(f"  observations: {report.observations}")
        self.stdout.write(f"  face templates: {report.face_templates}")
        self.stdout.write(f"  photo ID images: {report.id_photos}")
        self.stdout.write(f"  orphaned snapshot files: {report.orphan_files}")
