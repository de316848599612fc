"""Reads for live proctoring, evidence and re-scoring."""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q, QuerySet

from proctoring import rules
from proctoring.models import FaceTemplate, Flag, Observation, ProctoringSession, Snapshot
from proctoring.vision.types import EnrolledFace, Gaze, Pose

logger = logging.getLogger(__name__)


def enrolled_face_of(*, user: Any) -> EnrolledFace | None:
    """The student's enrolment as the workers need it: small and plain, so it travels in the task payload and
    inference workers never touch the database."""
    template = FaceTemplate.objects.filter(user=user).first()
    if template is None:
        return None
    # float32 little-endian, as stored. struct rather than numpy: this module is imported with the ASGI app, and
    # numpy belongs to the inference side.
    data = bytes(template.embedding)
    return EnrolledFace(
        embedding=struct.unpack(f"<{len(data) // 4}f", data),
        pack=template.pack,
        model_id=template.model_id,
        neutral=Pose(template.neutral_yaw, template.neutral_pitch, template.neutral_roll),
        neutral_gaze=(
            Gaze(template.neutral_gaze_yaw, template.neutral_gaze_pitch)
            if template.neutral_gaze_yaw is not None and template.neutral_gaze_pitch is not None
            else None
        ),
    )


def face_template_of(*, user: Any, fields: tuple[str, ...] = ()) -> FaceTemplate | None:
    """The user's face enrolment (only `fields`, when given: the embedding is a few KB), or None."""
    templates = FaceTemplate.objects.filter(user=user)
    return (templates.only(*fields) if fields else templates).first()


def snapshot_with_exam(*, snapshot_id: int) -> Snapshot | None:
    """The snapshot with its flag, session, attempt and exam (for the permission check), or None."""
    return Snapshot.objects.select_related("flag__session__attempt__exam").filter(pk=snapshot_id).first()


def frame_records_for_session(*, session: ProctoringSession) -> list[rules.FrameRecord]:
    """The stored observations as rule inputs, in order: what re-scoring feeds to rules.rescore().

    Plain rows rather than model instances: an hour of one student is 1,800 rows, and building the instances cost
    about a third of reading them."""
    rows = (
        Observation.objects.filter(session=session)
        .order_by("seq")
        .values_list(
            "seq",
            "captured_at",
            "face_count",
            "face_scores",
            "identity_checked",
            "similarity",
            "identity_threshold",
            "identity_error",
            "yaw",
            "pitch",
            "gaze_yaw",
            "gaze_pitch",
            "phone_score",
            "other_objects",
        )
    )
    return [
        rules.FrameRecord(
            seq=seq,
            at=captured_at.timestamp(),
            face_count=face_count,
            face_scores=tuple(face_scores),
            identity_checked=identity_checked,
            similarity=similarity,
            identity_threshold=identity_threshold,
            identity_error=identity_error or None,
            yaw=yaw,
            pitch=pitch,
            gaze_yaw=gaze_yaw,
            gaze_pitch=gaze_pitch,
            phone_score=phone_score,
            objects=dict(other_objects),
        )
        for (
            seq,
            captured_at,
            face_count,
            face_scores,
            identity_checked,
            similarity,
            identity_threshold,
            identity_error,
            yaw,
            pitch,
            gaze_yaw,
            gaze_pitch,
            phone_score,
            other_objects,
        ) in rows
    ]


def sessions_flagged() -> QuerySet[ProctoringSession]:
    """Sessions with at least one flag, with counts, for the admin list."""
    return (
        ProctoringSession.objects.select_related("attempt__exam", "attempt__student")
        .annotate(flag_count=Count("flags"), open_count=Count("flags", filter=Q(flags__status="open")))
        .filter(flag_count__gt=0)
    )


def exam_has_sessions(*, exam: Any) -> bool:
    """Whether any attempt at the exam was proctored (exams.hooks: its page then links to review)."""
    return ProctoringSession.objects.filter(attempt__exam=exam).exists()


def session_active_for_attempt(*, attempt_id: int) -> ProctoringSession | None:
    return ProctoringSession.objects.filter(attempt_id=attempt_id, status="active").first()


@dataclass(frozen=True)
class SetupStatus:
    """The set-up a proctored exam needs before it starts: consent to the current notice, a face enrolment made by
    the embedding model the server uses now, and, where the exam asks for it, an enrolment whose identity is known
    well enough (issue 11). The system check runs per attempt, so it is not part of the gate."""

    consent: bool
    enrolment: bool
    # The photo ID the exam asks the student to hold up, taken with the current enrolment.
    photo_id: bool = True
    identity: bool = True
    # What the exam requires and what is known of the enrolment, for the page that explains a shortfall.
    identity_required: str = "none"
    verification: str | None = None

    @property
    def missing(self) -> str | None:
        """The first step still to do (consent, enrolment, the photo ID, then identity), or None."""
        if not self.consent:
            return "consent"
        if not self.enrolment:
            return "enrolment"
        if not self.photo_id:
            return "photo_id"
        if not self.identity:
            return "identity"
        return None


def proctoring_setup_status(*, user: Any, exam: Any = None) -> SetupStatus:
    # Imported here: the consent and enrolment services are cheap, but the enrolment one reads the model pack's
    # manifest, which only this call needs.
    from proctoring.services.consent import consent_given
    from proctoring.services.enrolment import enrolment_is_current
    from proctoring.services.identity import identity_satisfies
    from proctoring.vision.packs import ModelPackError

    consent = consent_given(user=user)
    try:
        enrolment = enrolment_is_current(user=user)
    except ModelPackError:
        # The pack itself is broken: re-enrolling cannot help, so a template counts, and the exam page's checks
        # report the failure (the same choice as the enrolment page makes).
        logger.exception("Cannot tell which embedding model is current")
        enrolment = FaceTemplate.objects.filter(user=user).exists()
    template = FaceTemplate.objects.filter(user=user).only("verification", "id_captured_at").first()
    required = exam.identity_assurance if exam is not None else "none"
    identity = exam is None or identity_satisfies(exam=exam, template=template)
    photo_id = exam is None or not exam.photo_id_required or (template is not None and template.id_captured_at)
    return SetupStatus(
        consent=consent,
        enrolment=enrolment,
        photo_id=bool(photo_id),
        identity=identity,
        identity_required=required,
        verification=template.verification if template else None,
    )


def monitor_flag(flag: Flag) -> dict[str, Any]:
    """An open flag as the live monitor shows it: {kind, event, flag_id, at}."""
    return {"kind": flag.kind, "event": flag.kind.upper(), "flag_id": flag.pk, "at": flag.started_at.timestamp()}


def session_open_flags(session_id: int) -> list[dict[str, Any]]:
    """The session's open flags for the live monitor, oldest first."""
    flags = Flag.objects.filter(session_id=session_id, status=Flag.Status.OPEN).only("kind", "started_at")
    return [monitor_flag(f) for f in flags.order_by("started_at", "id")]
