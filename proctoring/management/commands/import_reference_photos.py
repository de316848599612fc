"""`python manage.py import_reference_photos FOLDER_OR_ZIP [--dry-run]`: attach reference photos named by username.

Every photo is checked first (a student of that name, exactly one usable face); with any problem nothing is attached
and every problem is listed, as `import_users` does for a CSV. The admin's upload page runs the same service.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from proctoring.models import ReferencePhoto
from proctoring.services.identity import IdentityError, photos_in, reference_photos_import
from proctoring.vision.packs import ModelPackError


class Command(BaseCommand):
    help = "Attach reference photos from a folder or a zip of photos named by username (alice.jpg), all or nothing."

    def add_arguments(self, parser):
        parser.add_argument("source", type=Path, help="a folder of photos, or a zip file")
        parser.add_argument("--dry-run", action="store_true", help="check every photo, attach nothing")

    def handle(self, *args, source: Path, dry_run: bool, **options):
        if not source.exists():
            raise CommandError(f"{source} does not exist")
        try:
            files = photos_in(source)
            report = reference_photos_import(
                files=files, added_by=None, source=ReferencePhoto.Source.COMMAND, dry_run=dry_run
            )
        except IdentityError as exc:
            raise CommandError(f"{source}: {exc.message}") from exc
        except ModelPackError as exc:
            raise CommandError(str(exc)) from exc
        for error in report.errors:
            self.stdout.write(error)
        if not report.ok:
            raise CommandError(report.summary())
        self.stdout.write(self.style.SUCCESS(report.summary()))
