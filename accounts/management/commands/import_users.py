"""`python manage.py import_users FILE [--dry-run] [--invite --site exams.example.edu]`: bulk-create users from a CSV
file, all or nothing; with --invite, email each new user a link to choose their password."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.services import IMPORT_COLUMNS, users_import_csv, users_invite


class Command(BaseCommand):
    help = (
        "Create users from a UTF-8 CSV file with the header "
        + ",".join(IMPORT_COLUMNS)
        + ". Every row is checked first; if any is bad, nobody is created and each problem is listed with its line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="path to the CSV file")
        parser.add_argument("--dry-run", action="store_true", help="check the file and report, create nobody")
        parser.add_argument("--invite", action="store_true", help="email each new user a link to set a password")
        parser.add_argument("--site", default="", help="the host name the invitation links point to (with --invite)")
        parser.add_argument("--http", action="store_true", help="invitation links use http:// instead of https://")

    def handle(
        self, *args: object, file: Path, dry_run: bool, invite: bool, site: str, http: bool, **options: object
    ) -> None:
        if invite and not site:
            raise CommandError("--invite needs --site, the host name students open (for example exams.example.edu).")
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
        if invite and not dry_run:
            self.stdout.write(users_invite(usernames=report.usernames, domain=site, use_https=not http).summary())
        elif note := report.password_note():
            self.stdout.write(self.style.WARNING(note))
