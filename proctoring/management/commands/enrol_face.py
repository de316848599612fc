"""`python manage.py enrol_face USERNAME IMAGE... [--reference PHOTO]`: enrol a student's face from photos (an admin
holding ID photos), and optionally attach a reference photo that the enrolment is checked against (issue 11).

The same service and quality checks as the enrolment page; re-running replaces the template.
"""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from proctoring.management.commands.proctor_analyze import read_image
from proctoring.models import FaceTemplate, ReferencePhoto
from proctoring.services.enrolment import face_enrol
from proctoring.services.identity import IdentityError, reference_photo_set
from proctoring.vision.packs import ModelPackError
from proctoring.vision.pipeline import get_analyzer


class Command(BaseCommand):
    help = "Enrol USERNAME's face from one or more photos (each must show only that person, facing the camera)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("images", type=Path, nargs="*")
        parser.add_argument(
            "--reference", type=Path, default=None, help="a trusted photo of the student (card, admissions)"
        )
        parser.add_argument("--min-frames", type=int, default=None, help="photos that must pass (default: all, max 3)")

    def handle(
        self, *args, username: str, images: list[Path], min_frames: int | None, reference: Path | None, **options
    ):

        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        if not images and reference is None:
            raise CommandError("give enrolment photos, a --reference photo, or both")
        frames = [read_image(path) for path in images]
        try:
            analyzer = get_analyzer()
        except ModelPackError as exc:
            raise CommandError(str(exc)) from exc
        if reference is not None:
            try:
                reference_photo_set(
                    user=user, data=reference.read_bytes(), added_by=None, source=ReferencePhoto.Source.COMMAND,
                    analyzer=analyzer,
                )  # fmt: skip
            except (IdentityError, OSError) as exc:
                raise CommandError(f"{reference}: {getattr(exc, 'message', exc)}") from exc
            self.stdout.write(f"Reference photo of {username} attached from {reference}.")
        if not frames:
            self._report_verification(user)
            return
        needed = min_frames if min_frames is not None else min(3, len(frames))
        result = face_enrol(user=user, images=frames, min_frames=needed, analyzer=analyzer)
        for index, reason, message in result.rejections:
            self.stdout.write(f"{images[index]}: rejected ({reason}): {message}")
        if result.template is None:
            raise CommandError(
                f"{result.accepted} of {len(frames)} photos passed; {needed} needed. Nothing was stored."
            )
        t = result.template
        self.stdout.write(
            self.style.SUCCESS(
                f"Enrolled {username} from {result.accepted} photo(s) with {t.pack}/{t.model_id}; neutral pose "
                f"yaw {t.neutral_yaw:.1f}, pitch {t.neutral_pitch:.1f}, roll {t.neutral_roll:.1f}"
            )
        )
        self._report_verification(user)

    def _report_verification(self, user) -> None:

        t = FaceTemplate.objects.filter(user=user).first()
        if t is None:
            self.stdout.write("Not enrolled yet: the enrolment will be checked against the reference photo.")
            return
        measured = f" (similarity {t.similarity:.2f}, threshold {t.threshold:.2f})" if t.similarity is not None else ""
        self.stdout.write(f"Identity: {t.get_verification_display()}{measured}")
