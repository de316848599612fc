"""`python manage.py import_users FILE [--dry-run]`: bulk-create users from a CSV file, all or nothing."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.services import IMPORT_COLUMNS, users_import_csv


class Command(BaseCommand):
    help = (
        "Create users from a UTF-8 CSV file with the header "
        + ",".join(IMPORT_COLUMNS)
        + ". Every row is checked first; if any is bad, nobody is created and each problem is listed with its line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="path to the CSV file")
        parser.add_argument("--dry-run", action="store_true", help="check the file and report, create nobody")

    def handle(self, *args: object, file: Path, dry_run: bool, **options: object) -> None:
        try:
            with file.open("rb") as fh:
                report = users_import_csv(file=fh, dry_run=dry_run)
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror or exc}.") from exc

        if not report.ok:
            for problem in report.problems:
                self.stderr.write(f"{file}: {problem}")
            # CommandError prints the message and exits with status 1.
            raise CommandError(report.summary())

        self.stdout.write(self.style.SUCCESS(report.summary()))
        if report.usernames:
            self.stdout.write(("Would create: " if dry_run else "Created: ") + ", ".join(report.usernames))
        if note := report.password_note():
            self.stdout.write(self.style.WARNING(note))
