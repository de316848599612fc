"""Snapshot evidence in private storage.

Files live under settings.PRIVATE_STORAGE_DIR (never under STATIC_ROOT or a public MEDIA_URL) with random names,
so a leaked path reveals nothing and cannot be guessed. They are read back only through
proctoring.views.evidence.snapshot_view, which checks who asks and writes an EvidenceView audit entry.
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime
from pathlib import Path

from django.conf import settings

from accounts.models import User
from proctoring.models import EvidenceView, Flag, Snapshot

SNAPSHOT_DIR = "snapshots"


def _root() -> Path:
    return Path(settings.PRIVATE_STORAGE_DIR)


def private_path(relative: str) -> Path:
    """The file of a path stored in the database, which can never point outside private storage (defence in
    depth)."""
    path = (_root() / relative).resolve()
    if _root().resolve() not in path.parents:
        raise ValueError(f"{relative!r} points outside private storage")
    return path


def private_write(*, directory: str, data: bytes, suffix: str = ".jpg") -> str:
    """Write `data` under a new random name in `directory` of private storage (owner-only, synced); return the
    relative path to store."""
    token = secrets.token_urlsafe(24)
    relative = f"{directory}/{token[:2]}/{token}{suffix}"
    target = _root() / relative
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return relative


def private_delete(relative: str) -> None:
    """Remove a private file; a missing one is not an error (the goal is its absence)."""
    if relative:
        private_path(relative).unlink(missing_ok=True)


def snapshot_path(*, snapshot: Snapshot) -> Path:
    return private_path(snapshot.path)


def snapshot_store(*, flag: Flag, data: bytes, width: int, height: int, taken_at: datetime) -> Snapshot:
    """Write the JPEG to private storage, then record it. Call inside the transaction that opens the flag: if that
    rolls back, an orphan file may remain, which the retention purge removes; a row never points at nothing."""
    relative = private_write(directory=SNAPSHOT_DIR, data=data)
    return Snapshot.objects.create(
        flag=flag, path=relative, width=width, height=height, size_bytes=len(data), taken_at=taken_at
    )


def snapshot_read(*, snapshot: Snapshot) -> bytes:
    return snapshot_path(snapshot=snapshot).read_bytes()


def evidence_view_record(*, viewer: User, snapshot: Snapshot) -> EvidenceView:
    """Audit: who viewed which snapshot. Written on every serve, including thumbnails in the admin."""
    return EvidenceView.objects.create(
        viewer=viewer,
        snapshot=snapshot,
        snapshot_ref=f"snapshot:{snapshot.pk}",
        attempt_id=snapshot.flag.session.attempt_id,
    )


def identity_view_record(*, viewer: User, student_id: int, kind: str) -> EvidenceView:
    """Audit: who viewed a student's enrolment or reference photo (issue 11), in the same log as evidence."""
    return EvidenceView.objects.create(viewer=viewer, snapshot=None, snapshot_ref=f"{kind}-photo:user:{student_id}")


def snapshot_delete(*, snapshot: Snapshot) -> None:
    """Remove the file and the row (retention purge). A missing file is not an error: the goal is its absence."""
    private_delete(snapshot.path)
    snapshot.delete()
