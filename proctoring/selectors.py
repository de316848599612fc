"""Reads for live proctoring, evidence and re-scoring."""

from __future__ import annotations

import functools
import logging
import struct
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet

from accounts.models import User
from exams.models import Exam
from proctoring import rules
from proctoring.models import (
    CONSENT_NOTICE_VERSION,
    ConsentRecord,
    FaceTemplate,
    Flag,
    Observation,
    ProctoringSession,
    Snapshot,
)
from proctoring.vision.base import FaceEmbedder
from proctoring.vision.errors import ModelPackError
from proctoring.vision.packs import embedding_pack_of, load_manifest
from proctoring.vision.registry import model_class
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


# --- Consent, enrolment and identity: what the start gate asks. ---


def consent_current(*, user: User, version: str = CONSENT_NOTICE_VERSION) -> ConsentRecord | None:
    """The student's latest answer to this version of the notice, or None when they have not answered it yet."""
    if not getattr(user, "is_authenticated", False):
        return None
    return ConsentRecord.objects.filter(user=user, notice_version=version).order_by("-recorded_at", "-id").first()


def consent_given(*, user: User, version: str = CONSENT_NOTICE_VERSION) -> bool:
    record = consent_current(user=user, version=version)
    return record is not None and record.accepted


def current_embedding_model(*, pack: str | None = None) -> tuple[str, str]:
    """(pack, model id) of the embeddings the server makes now, read from the manifest without loading models. The
    pack is the one that owns the embedder: default-int8 and yolo take it from default, so enrolments made under
    default stay current when an operator switches to them. The one place that says which embedding is current."""
    return _embedding_model_of(pack or settings.MODEL_PACK)


@functools.lru_cache(maxsize=8)
def _embedding_model_of(pack: str) -> tuple[str, str]:
    manifest = load_manifest(pack)
    spec = manifest.models["embedder"]
    embedder = model_class(spec["class"])(
        params=spec.get("params", {}), name=spec["class"], version=spec.get("version", "")
    )
    assert isinstance(embedder, FaceEmbedder), f"{spec['class']} is not a face embedder"
    return manifest.role_pack("embedder"), embedder.model_id


def enrolment_is_current(*, user: User, pack: str | None = None) -> bool:
    """True when the user has a template made by the current pack's embedding model (else: re-enrol, 4412)."""
    template = FaceTemplate.objects.filter(user=user).only("pack", "model_id").first()
    if template is None:
        return False
    return (embedding_pack_of(template.pack), template.model_id) == current_embedding_model(pack=pack)


def identity_satisfies(*, exam: Exam, template: FaceTemplate | None) -> bool:
    """Whether an enrolment meets the exam's required identity assurance."""
    required = exam.identity_assurance
    if required == Exam.IdentityAssurance.NONE:
        return True
    if template is None:
        return False
    if required == Exam.IdentityAssurance.MATCHED:
        return template.verification in (FaceTemplate.Verification.MATCHED, FaceTemplate.Verification.APPROVED)
    return template.verification == FaceTemplate.Verification.APPROVED
