"""Opening and closing flags from the rules' decisions, with their evidence."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from proctoring import rules
from proctoring.models import Flag, ProctoringSession
from proctoring.services.evidence import snapshot_store


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def model_version_of(models: dict[str, str]) -> str:
    """One readable string of the models behind an observation, e.g. "detector=blazeface@0.6.0,embedder=..."."""
    return ",".join(f"{role}={version}" for role, version in sorted(models.items()))


def flag_open(
    *,
    session: ProctoringSession,
    opened: rules.FlagOpen,
    model_version: str,
    frame: bytes | None,
    width: int,
    height: int,
    settings_snapshot: dict[str, Any] | None = None,
) -> Flag:
    """Create the flag and its snapshot. The caller holds the transaction, so both commit before the event goes out."""
    details = dict(opened.details)
    if settings_snapshot is not None:
        details["settings"] = settings_snapshot
    flag = Flag.objects.create(
        session=session,
        kind=opened.kind,
        started_at=_when(opened.at),
        started_seq=opened.seq,
        confidence=opened.confidence,
        threshold=opened.threshold,
        model_version=model_version,
        details=details,
    )
    if frame:
        snapshot_store(flag=flag, data=frame, width=width, height=height, taken_at=_when(opened.at))
    return flag


def flag_close(*, session: ProctoringSession, closed: rules.FlagClose) -> int:
    """Close the open flag of this kind (there is at most one per kind per session). Returns rows updated. A flag
    closed because the frames could no longer tell says so in its details, for the reviewer."""
    flags = Flag.objects.filter(session=session, kind=closed.kind, ended_at__isnull=True)
    if closed.reason != "clear":
        for flag in flags.only("details"):
            flag.details = {**(flag.details or {}), "ended_because": closed.reason}
            flag.save(update_fields=["details"])
    return flags.update(ended_at=_when(closed.at), ended_seq=closed.seq)


def flags_close_all(*, session: ProctoringSession, at: datetime) -> int:
    """When a session ends, its open spans end with it. Review status is untouched: a human still decides."""
    return Flag.objects.filter(session=session, ended_at__isnull=True).update(ended_at=at)
