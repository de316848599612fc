"""Snapshot evidence in private storage.

Files live under settings.PRIVATE_STORAGE_DIR (never under STATIC_ROOT or a public MEDIA_URL) with random names,
so a leaked path reveals nothing and cannot be guessed. They are read back only through
proctoring.views.snapshot_view, which checks who asks and writes an EvidenceView audit entry.
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime
from pathlib import Path

from django.conf import settings

from proctoring.models import EvidenceView, Flag, Snapshot

SNAPSHOT_DIR = "snapshots"


def _root() -> Path:
    return Path(settings.PRIVATE_STORAGE_DIR)


def snapshot_path(*, snapshot: Snapshot) -> Path:
    path = (_root() / snapshot.path).resolve()
    # Defence in depth: a path in the database can never point outside private storage.
    if _root().resolve() not in path.parents:
        raise ValueError(f"snapshot {snapshot.pk} points outside private storage")
    return path


def snapshot_store(*, flag: Flag, data: bytes, width: int, height: int, taken_at: datetime) -> Snapshot:
    """Write the JPEG to private storage, then record it. Call inside the transaction that opens the flag: if that
    rolls back, an orphan file may remain, which the retention purge removes; a row never points at nothing."""
    token = secrets.token_urlsafe(24)
    relative = f"{SNAPSHOT_DIR}/{token[:2]}/{token}.jpg"
    target = _root() / relative
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return Snapshot.objects.create(
        flag=flag, path=relative, width=width, height=height, size_bytes=len(data), taken_at=taken_at
    )


def snapshot_read(*, snapshot: Snapshot) -> bytes:
    return snapshot_path(snapshot=snapshot).read_bytes()


def evidence_view_record(*, viewer, snapshot: Snapshot) -> EvidenceView:
    """Audit: who viewed which snapshot. Written on every serve, including thumbnails in the admin."""
    return EvidenceView.objects.create(
        viewer=viewer,
        snapshot=snapshot,
        snapshot_ref=f"snapshot:{snapshot.pk}",
        attempt_id=snapshot.flag.session.attempt_id,
    )


def snapshot_delete(*, snapshot: Snapshot) -> None:
    """Remove the file and the row (retention purge). A missing file is not an error: the goal is its absence."""
    try:
        snapshot_path(snapshot=snapshot).unlink()
    except FileNotFoundError:
        pass
    snapshot.delete()
