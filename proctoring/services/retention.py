"""Retention: delete proctoring evidence once it is older than the notice promises to keep it.

What goes, for every proctoring session that ended more than `older_than_days` ago:
- its flags' snapshot JPEGs (files and rows),
- its Observation rows, the per-frame data re-scoring reads.
And, for every student with no attempt started inside the window (nor one still in progress), their face template
(the embedding and neutral pose, with its enrolment and ID photos), unless they enrolled inside the window. And the
image of every photo ID taken before the cutoff, like a flag's snapshot: the enrolment keeps the ID's similarity and
when it was taken, so the exams that asked for it still know it was shown.

What stays: the flags themselves with their reviews, decisions, responses and the audit log of who viewed evidence
(EvidenceView keeps its `snapshot_ref` when the snapshot row goes). They are the record of what was decided, and
hold no image or biometric data.

How, and why that way:
1. Rows go in batches of `batch_size`, each in its own short transaction. One DELETE over a term's worth of
   snapshots holds locks for minutes and, if it fails, rolls everything back: users complain of deletes that fail
   at scale. A batch that fails leaves the earlier ones done and the next run carries on.
2. A snapshot's file is removed only after the transaction that deleted its row commits (transaction.on_commit).
   Deleting files first would leave rows pointing at nothing if the transaction rolled back; this order can at worst
   leave a file without a row, which step 4 of the next run removes.
3. A file that is already gone is fine: the goal is its absence.
4. Files under the snapshot directory with no row, last modified before the cutoff, are removed too: they are left
   over from a flag's transaction that rolled back after its JPEG was written (see evidence.snapshot_store).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from exams.models import Attempt
from proctoring.models import FaceTemplate, Observation, ProctoringSession, Snapshot
from proctoring.services.evidence import SNAPSHOT_DIR, private_delete, snapshot_path

logger = logging.getLogger(__name__)

# Rows per transaction. Small enough that each batch holds its locks for a fraction of a second on PostgreSQL and
# that an IN (...) list stays far under SQLite's variable limit; large enough that a million rows take 2,000 trips.
BATCH_SIZE = 500


@dataclass
class PurgeReport:
    """What a purge deleted (or, with dry_run, would delete)."""

    cutoff: datetime
    dry_run: bool
    sessions: int = 0
    snapshots: int = 0
    files_deleted: int = 0
    files_missing: int = 0
    observations: int = 0
    face_templates: int = 0
    id_photos: int = 0
    orphan_files: int = 0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cutoff"] = self.cutoff.isoformat()
        return data


def sessions_past_retention(*, cutoff: datetime) -> QuerySet[ProctoringSession]:
    """Sessions whose evidence is due: ended before the cutoff, or never closed (a server that died mid-exam) but
    started before it, for an attempt that is no longer running."""
    ended = Q(ended_at__lt=cutoff)
    abandoned = Q(ended_at__isnull=True, started_at__lt=cutoff) & ~Q(attempt__status=Attempt.Status.IN_PROGRESS)
    return ProctoringSession.objects.filter(ended | abandoned)


def face_templates_past_retention(*, cutoff: datetime) -> QuerySet[FaceTemplate]:
    """Templates of students who have not sat anything inside the window. A template made inside the window stays,
    even before its first exam: the student has just enrolled for an exam still to come."""
    recent = Attempt.objects.filter(Q(started_at__gte=cutoff) | Q(status=Attempt.Status.IN_PROGRESS))
    return FaceTemplate.objects.filter(updated_at__lt=cutoff).exclude(user__in=recent.values("student"))


def evidence_purge(
    *, older_than_days: int, now: datetime | None = None, dry_run: bool = False, batch_size: int = BATCH_SIZE
) -> PurgeReport:
    """Delete the evidence of sessions that ended more than `older_than_days` days ago (see the module docstring).

    Counts in the report are rows deleted; `files_deleted` and `files_missing` count files once their transaction
    committed, so inside an outer transaction they stay 0 until it commits. With dry_run, nothing is deleted and
    the report says what would be.
    """
    if older_than_days < 1:
        raise ValueError(f"older_than_days must be at least 1, not {older_than_days}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    now = now or timezone.now()
    cutoff = now - timedelta(days=older_than_days)
    report = PurgeReport(cutoff=cutoff, dry_run=dry_run)
    sessions = sessions_past_retention(cutoff=cutoff)
    report.sessions = sessions.count()
    snapshots = Snapshot.objects.filter(flag__session__in=sessions.values("pk"))
    observations = Observation.objects.filter(session__in=sessions.values("pk"))
    templates = face_templates_past_retention(cutoff=cutoff)
    id_photos = FaceTemplate.objects.filter(id_captured_at__lt=cutoff).exclude(id_photo_path="")

    if dry_run:
        report.snapshots = snapshots.count()
        report.observations = observations.count()
        report.face_templates = templates.count()
        report.id_photos = id_photos.exclude(pk__in=templates.values("pk")).count()
        report.orphan_files = sum(1 for _ in _orphan_files(cutoff=cutoff))
        return report

    report.snapshots = _purge_snapshots(snapshots, report=report, batch_size=batch_size)
    report.observations = _delete_in_batches(observations, batch_size=batch_size)
    report.face_templates = _delete_in_batches(templates, batch_size=batch_size)
    report.id_photos = _purge_id_photos(id_photos, batch_size=batch_size)
    report.orphan_files = _purge_orphan_files(cutoff=cutoff)
    logger.info("Evidence purge: %s", report.as_dict())
    return report


def _purge_snapshots(snapshots: QuerySet[Snapshot], *, report: PurgeReport, batch_size: int) -> int:
    deleted = 0
    while True:
        batch = list(snapshots.order_by("pk").values_list("pk", "path")[:batch_size])
        if not batch:
            return deleted
        files = _resolve(batch)
        with transaction.atomic():
            # EvidenceView.snapshot is SET_NULL: the audit entry stays, with its snapshot_ref.
            Snapshot.objects.filter(pk__in=[pk for pk, _ in batch]).delete()
            transaction.on_commit(functools.partial(_unlink, files, report=report))
        deleted += len(batch)


def _purge_id_photos(templates: QuerySet[FaceTemplate], *, batch_size: int) -> int:
    """Forget the ID images, keeping the rest of each enrolment; each file goes once its row no longer names it."""
    purged = 0
    while True:
        batch = list(templates.order_by("pk").values_list("pk", "id_photo_path")[:batch_size])
        if not batch:
            return purged
        with transaction.atomic():
            FaceTemplate.objects.filter(pk__in=[pk for pk, _ in batch]).update(id_photo_path="")
            transaction.on_commit(functools.partial(_delete_files, [path for _, path in batch]))
        purged += len(batch)


def _delete_files(paths: list[str]) -> None:
    for path in paths:
        private_delete(path)


def _resolve(batch: list[tuple[int, str]]) -> list[Path]:
    """The batch's files, resolved before their rows go. A path that points outside private storage is never
    followed (snapshot_path refuses it): its row still goes, its file is left alone and logged."""
    files = []
    for pk, path in batch:
        try:
            files.append(snapshot_path(snapshot=Snapshot(pk=pk, path=path)))
        except ValueError:
            logger.error("Snapshot %s points outside private storage (%r): deleting the row only", pk, path)
    return files


def _unlink(files: list[Path], *, report: PurgeReport) -> None:
    for path in files:
        try:
            path.unlink()
        except FileNotFoundError:
            report.files_missing += 1
        except OSError:
            # Permissions or I/O: the row is gone, so log loudly; the orphan sweep retries on the next run.
            logger.exception("Could not delete snapshot file %s", path)
        else:
            report.files_deleted += 1


def _delete_in_batches(queryset: QuerySet[Any], *, batch_size: int) -> int:
    deleted = 0
    while True:
        pks = list(queryset.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not pks:
            return deleted
        with transaction.atomic():
            queryset.model.objects.filter(pk__in=pks).delete()
        deleted += len(pks)


def _orphan_files(*, cutoff: datetime) -> Iterator[Path]:
    """Snapshot files older than the cutoff that no row refers to, checked against the database a batch at a time."""
    root = Path(settings.PRIVATE_STORAGE_DIR)
    directory = root / SNAPSHOT_DIR
    if not directory.is_dir():
        return
    limit = cutoff.timestamp()
    candidates: dict[str, Path] = {}
    for dirpath, _dirnames, filenames in os.walk(directory):
        for name in filenames:
            path = Path(dirpath) / name
            try:
                if path.stat().st_mtime >= limit:
                    continue
            except FileNotFoundError:
                continue
            candidates[path.relative_to(root).as_posix()] = path
            if len(candidates) >= BATCH_SIZE:
                yield from _without_rows(candidates)
                candidates = {}
    yield from _without_rows(candidates)


def _without_rows(candidates: dict[str, Path]) -> Iterator[Path]:
    known = set(Snapshot.objects.filter(path__in=list(candidates)).values_list("path", flat=True))
    for relative, path in candidates.items():
        if relative not in known:
            yield path


def _purge_orphan_files(*, cutoff: datetime) -> int:
    removed = 0
    for path in list(_orphan_files(cutoff=cutoff)):
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed += 1
    return removed
