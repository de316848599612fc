"""Who enrolled (issue 11): reference photos, the check of an enrolment against one, and a person's decision.

A student enrols their own face from the webcam, so nothing says the face is theirs. An admin or an instructor can
attach a reference photo (the card or admissions photo) to a student: in the admin, in bulk from a zip or folder of
photos named by username, or with `enrol_face --reference`. Every enrolment then has a verification status:

- ``unverified``: no reference to compare with, or a reference made by another embedding model;
- ``matched`` / ``mismatch``: the enrolment's embedding against the reference photo's and, when the student held a
  photo ID up to the camera, the face printed on it, by the pack's identity threshold, with the similarities kept;
  every comparison made must match;
- ``approved`` / ``rejected``: a person looked at the enrolment photo beside the reference and decided, with a note
  (audited in EnrolmentDecision).

A mismatch is never final by itself: it waits for a person. A re-enrolment resets the status (and is matched again
when a reference exists); a new reference photo re-checks an enrolment nobody has decided on yet.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from proctoring.decisions import ReviewError, decision_note
from proctoring.models import EnrolmentDecision, FaceTemplate, ReferencePhoto
from proctoring.permissions import students_of, user_can_verify
from proctoring.services.evidence import private_delete, private_path, private_write
from proctoring.vision.frames import FrameError, decode_frame, encode_jpeg, fit_within
from proctoring.vision.idphoto import MIN_ID_FACE_PX, id_faces
from proctoring.vision.idphoto import width as face_width
from proctoring.vision.packs import load_manifest
from proctoring.vision.pipeline import Analyzer, cosine, get_analyzer

IDENTITY_DIR = "identity"
# A reference photo is a portrait or a scan, larger than a webcam frame: accept up to 10 MB, and keep a copy that
# fits 640 px (enough for a person to compare faces).
MAX_REFERENCE_BYTES = 10 * 1024 * 1024
KEPT_SIDE = 640
MIN_FACE_PX = 40
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MAX_IMPORT_FILES = 5000
MAX_IMPORT_BYTES = 200 * 1024 * 1024

Verification = FaceTemplate.Verification


class IdentityError(ValueError):
    """A reference photo or a decision that cannot be accepted; `message` is safe to show to whoever asked."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ReferenceFace:
    """A checked reference photo: the copy to keep (JPEG) and the embedding of its one face."""

    jpeg: bytes
    embedding: np.ndarray
    pack: str
    model_id: str


def reference_face(*, data: bytes, analyzer: Analyzer | None = None) -> ReferenceFace:
    """Check a reference photo: an image we can read, with exactly one face of at least 40 px. Raises
    IdentityError with what is wrong, for the person who chose the file."""
    import cv2  # lazy: OpenCV stays out of the ASGI server

    analyzer = analyzer or get_analyzer()
    try:
        image = decode_frame(data, max_bytes=MAX_REFERENCE_BYTES)
    except FrameError as exc:
        raise IdentityError(f"the image cannot be used: {exc.message}") from exc
    faces = analyzer.detector.detect(image)
    if not faces:
        raise IdentityError("no face was found in the photo")
    if len(faces) > 1:
        raise IdentityError(f"the photo shows {len(faces)} faces; a reference photo must show only the student")
    face = faces[0]
    x1, y1, x2, y2 = face.box
    if min(x2 - x1, y2 - y1) < MIN_FACE_PX:
        raise IdentityError(f"the face is too small ({int(min(x2 - x1, y2 - y1))} px; at least {MIN_FACE_PX} px)")
    embedding = analyzer.describe_face(image, face).embedding
    if embedding is None:
        raise IdentityError("the face could not be measured; use a sharper, front-facing photo")
    height, width = image.shape[:2]
    kept = image
    if max(width, height) > KEPT_SIDE:
        kept = cv2.resize(image, fit_within(width, height, KEPT_SIDE, KEPT_SIDE), interpolation=cv2.INTER_AREA)
    return ReferenceFace(
        jpeg=encode_jpeg(kept, quality=90),
        embedding=np.asarray(embedding, dtype=np.float32),
        pack=analyzer.embedding_pack,
        model_id=analyzer.embedding_model_id,
    )


def reference_photo_set(
    *, user: User, data: bytes, added_by: User | None, source: str, analyzer: Analyzer | None = None
) -> ReferencePhoto:
    """Attach (or replace) `user`'s reference photo and re-check their enrolment against it."""
    if not user.is_student:
        raise IdentityError(f"{user.username} is not a student")
    face = reference_face(data=data, analyzer=analyzer)
    return _store_reference(user=user, face=face, added_by=added_by, source=source)


def _store_reference(*, user: User, face: ReferenceFace, added_by: User | None, source: str) -> ReferencePhoto:
    relative = private_write(directory=IDENTITY_DIR, data=face.jpeg)
    with transaction.atomic():
        old = ReferencePhoto.objects.select_for_update().filter(user=user).first()
        old_path = old.path if old else ""
        photo, _ = ReferencePhoto.objects.update_or_create(
            user=user,
            defaults={
                "path": relative,
                "pack": face.pack,
                "model_id": face.model_id,
                "embedding": face.embedding.astype("<f4").tobytes(),
                "source": source,
                "added_by": added_by,
            },
        )
        enrolment_verify(user=user)
        transaction.on_commit(lambda: private_delete(old_path))
    return photo


def enrolment_verify(*, user: User, reset: bool = False) -> FaceTemplate | None:
    """Compare `user`'s enrolment with their reference photo and the face on their photo ID, where there are any,
    and record matched (every comparison made matches), mismatch (one does not) or unverified (none to make).

    A person's decision stands until the student enrols again (`reset`, which face_enrol passes)."""
    template = FaceTemplate.objects.select_for_update().filter(user=user).first()
    if template is None:
        return None
    decided = template.verification in (Verification.APPROVED, Verification.REJECTED)
    if decided and not reset:
        return template
    reference = ReferencePhoto.objects.filter(user=user).first()
    template.verified_at = template.verified_by = None
    template.verification_note = ""
    template.similarity = None
    if reference is not None and (reference.pack, reference.model_id) == (template.pack, template.model_id):
        template.similarity = round(cosine(_vector(template.embedding), _vector(reference.embedding)), 4)
    compared = [s for s in (template.similarity, template.id_similarity) if s is not None]
    if not compared:
        template.verification, template.threshold = Verification.UNVERIFIED, None
    else:
        template.threshold = identity_threshold(pack=template.pack)
        matched = all(s >= template.threshold for s in compared)
        template.verification = Verification.MATCHED if matched else Verification.MISMATCH
    template.save(
        update_fields=["verification", "similarity", "threshold", "verified_at", "verified_by", "verification_note"]
    )
    return template


def identity_threshold(*, pack: str) -> float:
    """The pack's identity threshold, read from its manifest without loading any model (as the Analyzer reads it)."""
    params = load_manifest(pack).models["embedder"].get("params", {})
    return float(params.get("threshold", 0.4))


def _vector(blob: bytes | memoryview) -> np.ndarray:
    return np.frombuffer(bytes(blob), dtype="<f4")


def enrolment_decide(*, student_id: int, actor: User, action: str, note: str = "") -> FaceTemplate:
    """A person approves or rejects a student's enrolment, with a note; recorded in EnrolmentDecision."""
    if action not in EnrolmentDecision.Action.values:
        raise ReviewError(f"Unknown decision {action!r}: use approve or reject.", code="bad_decision")
    note = decision_note(note)
    with transaction.atomic():
        template = FaceTemplate.objects.select_for_update().select_related("user").filter(user_id=student_id).first()
        if template is None or not user_can_verify(actor=actor, student=template.user):
            # The same answer for "no such enrolment" and "not yours": ids reveal nothing.
            raise ReviewError("No such enrolment among your students.", code="not_found")
        previous = template.verification
        template.verification = Verification.APPROVED if action == "approve" else Verification.REJECTED
        template.verified_at = timezone.now()
        template.verified_by = actor
        template.verification_note = note
        template.save(update_fields=["verification", "verified_at", "verified_by", "verification_note"])
        EnrolmentDecision.objects.create(
            student=template.user,
            actor=actor,
            action=action,
            from_status=previous,
            similarity=template.similarity,
            note=note,
        )
    return template


# --- Photo ID -------------------------------------------------------------------------------------------------

ID_MESSAGES = {
    "not_enrolled": "Please enrol your face first; the photo on your ID is matched with your enrolment.",
    "no_face": "We couldn't see your face. Sit facing the camera and hold your photo ID up beside your face.",
    "no_card": (
        "We can see only one face. Hold the ID up beside your face with the photo towards the camera, so that both "
        "are in the picture, and tilt it a little if the light shines on it."
    ),
    "card_too_small": "The photo on your ID is too small in the picture. Bring the ID a little closer to the camera.",
    "too_many": "We can see more than one person as well as your ID. Make sure you are alone in the frame.",
    "different_person": (
        "The face beside the ID doesn't look like the face you enrolled. Hold your own ID beside your own face. If "
        "you enrolled in poor light, enrol again first."
    ),
    "saved": "Thank you: your ID photo is saved with your enrolment.",
}


@dataclass(frozen=True)
class IdCheck:
    """One webcam frame of a student holding their photo ID: usable or not (with what to change), and the
    similarity of the face printed on the ID to the enrolment."""

    ok: bool
    reason: str
    message: str
    similarity: float | None = None
    card_box: tuple[float, float, float, float] | None = None


def photo_id_check(*, image: np.ndarray, template: FaceTemplate, analyzer: Analyzer | None = None) -> IdCheck:
    """Find the live face and the ID's printed face in the frame; the live one must be the enrolled person (who holds
    the card), the printed one is measured against the enrolment."""
    analyzer = analyzer or get_analyzer()
    found = id_faces(analyzer.detector, image)
    if found.live is None:
        return IdCheck(False, "no_face", ID_MESSAGES["no_face"])
    if found.card is None:
        return IdCheck(False, "no_card", ID_MESSAGES["no_card"])
    if found.count > 2:
        return IdCheck(False, "too_many", ID_MESSAGES["too_many"])
    if face_width(found.card) < MIN_ID_FACE_PX:
        return IdCheck(False, "card_too_small", ID_MESSAGES["card_too_small"], card_box=found.card.box)
    enrolled = _vector(template.embedding)
    live = analyzer.describe_face(image, found.live).embedding
    if live is None or cosine(live, enrolled) < analyzer.identity_threshold:
        return IdCheck(False, "different_person", ID_MESSAGES["different_person"], card_box=found.card.box)
    printed = analyzer.describe_face(image, found.card).embedding
    if printed is None:
        return IdCheck(False, "no_card", ID_MESSAGES["no_card"], card_box=found.card.box)
    similarity = round(cosine(printed, enrolled), 4)
    return IdCheck(True, "saved", ID_MESSAGES["saved"], similarity=similarity, card_box=found.card.box)


def photo_id_record(*, user: User, image: np.ndarray, analyzer: Analyzer | None = None) -> IdCheck:
    """Check a frame of `user` holding their photo ID and, when it is usable, keep it with their enrolment (replacing
    an earlier one) and check the enrolment again. A frame that is not usable changes nothing."""
    template = FaceTemplate.objects.filter(user=user).only("embedding").first()
    if template is None:
        return IdCheck(False, "not_enrolled", ID_MESSAGES["not_enrolled"])
    check = photo_id_check(image=image, template=template, analyzer=analyzer)
    if not check.ok:
        return check
    relative = private_write(directory=IDENTITY_DIR, data=encode_jpeg(image, quality=90))
    with transaction.atomic():
        current = FaceTemplate.objects.select_for_update().filter(user=user).first()
        if current is None or bytes(current.embedding) != bytes(template.embedding):
            # Re-enrolled (or deleted) while this frame was checked: it was measured against another face.
            transaction.on_commit(lambda: private_delete(relative))
            return IdCheck(False, "not_enrolled", ID_MESSAGES["not_enrolled"])
        old = current.id_photo_path
        current.id_photo_path = relative
        current.id_similarity = check.similarity
        current.id_captured_at = timezone.now()
        current.id_face_box = [round(float(v), 1) for v in check.card_box or ()] or None
        current.save(update_fields=["id_photo_path", "id_similarity", "id_captured_at", "id_face_box"])
        enrolment_verify(user=user)
        transaction.on_commit(lambda: private_delete(old))
    return check


# --- Bulk import ------------------------------------------------------------------------------------------------


@dataclass
class PhotoImportReport:
    """What a bulk import found: every bad file, by name, or how many photos were attached."""

    errors: list[str] = field(default_factory=list)
    attached: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        if self.errors:
            return f"Nothing was attached: {len(self.errors)} problem(s) to fix first."
        verb = "would attach" if self.dry_run else "attached"
        return f"All photos are good: {verb} {len(self.attached)} reference photo(s)."


def photos_in(source: Path | bytes) -> list[tuple[str, bytes]]:
    """(file name, bytes) of every file in a folder or a zip (given as a path or as bytes), sorted by name, skipping
    hidden files and folders. Raises IdentityError for an unreadable or oversized archive."""
    files: list[tuple[str, bytes]] = []
    if isinstance(source, Path) and source.is_dir():
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            if any(part.startswith(".") for part in path.relative_to(source).parts):
                continue
            files.append((path.relative_to(source).as_posix(), path.read_bytes()))
    else:
        data = source if isinstance(source, bytes) else source.read_bytes()
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile as exc:
            raise IdentityError("the upload is neither a folder nor a zip file") from exc
        members = [m for m in archive.infolist() if not m.is_dir()]
        if sum(m.file_size for m in members) > MAX_IMPORT_BYTES:
            raise IdentityError(f"the zip unpacks to more than {MAX_IMPORT_BYTES // 2**20} MB")
        for member in sorted(members, key=lambda m: m.filename):
            if any(part.startswith(".") or part == "__MACOSX" for part in Path(member.filename).parts):
                continue
            files.append((member.filename, archive.read(member)))
    if len(files) > MAX_IMPORT_FILES:
        raise IdentityError(f"{len(files)} files; at most {MAX_IMPORT_FILES} at once")
    return files


def reference_photos_import(
    *,
    files: list[tuple[str, bytes]],
    added_by: User | None,
    source: str,
    dry_run: bool = False,
    analyzer: Analyzer | None = None,
) -> PhotoImportReport:
    """Attach reference photos named by username (``alice.jpg``), all or nothing.

    Every file is checked first (a student of that name, one name once, an image with one usable face); with any
    problem nothing is attached and every problem is reported, like the CSV import of users."""
    report = PhotoImportReport(dry_run=dry_run)
    if not files:
        report.errors.append("no photos found")
        return report
    checked: list[tuple[User, ReferenceFace]] = []
    seen: dict[str, str] = {}
    students = {u.username.lower(): u for u in User.objects.filter(role=User.Role.STUDENT)}
    for name, data in files:
        stem, suffix = Path(name).stem, Path(name).suffix.lower()
        if suffix not in IMAGE_SUFFIXES:
            report.errors.append(f"{name}: not a photo (use {', '.join(IMAGE_SUFFIXES)})")
            continue
        user = students.get(stem.lower())
        if user is None:
            report.errors.append(f"{name}: no student with the username {stem!r}")
            continue
        if stem.lower() in seen:
            report.errors.append(f"{name}: {stem} already has a photo in this upload ({seen[stem.lower()]})")
            continue
        seen[stem.lower()] = name
        try:
            checked.append((user, reference_face(data=data, analyzer=analyzer)))
        except IdentityError as exc:
            report.errors.append(f"{name}: {exc.message}")
    if report.errors or dry_run:
        if not report.errors:
            report.attached = [user.username for user, _ in checked]
        return report
    with transaction.atomic():
        for user, face in checked:
            _store_reference(user=user, face=face, added_by=added_by, source=source)
            report.attached.append(user.username)
    return report


# --- Reading ----------------------------------------------------------------------------------------------------

# The queue's order: what waits for a person first.
QUEUE_ORDER = (
    Verification.MISMATCH,
    Verification.UNVERIFIED,
    Verification.MATCHED,
    Verification.REJECTED,
    Verification.APPROVED,
)


def identity_queue(*, actor: User, status: str | None = None) -> list[FaceTemplate]:
    """The enrolments `actor` may verify, what waits for a person first, then by name; optionally one status."""
    templates = (
        FaceTemplate.objects.filter(user__in=students_of(actor))
        .select_related("user", "user__reference_photo", "verified_by")
        .defer("embedding", "user__reference_photo__embedding")
    )
    if status:
        templates = templates.filter(verification=status)
    rank: dict[str, int] = {value: index for index, value in enumerate(QUEUE_ORDER)}
    return sorted(templates, key=lambda t: (rank.get(t.verification, 9), t.user.get_full_name() or t.user.username))


def identity_photo_for_viewer(*, actor: User, student_id: int, kind: str) -> bytes:
    """A student's enrolment, reference or ID photo (JPEG), or the ID's printed face enlarged ("id_face"), for
    someone who may verify them; raises IdentityError for anything else (the view answers 404 either way)."""
    student = User.objects.filter(pk=student_id).first()
    if student is None or not user_can_verify(actor=actor, student=student):
        raise IdentityError("No such photo among your students.")
    template = FaceTemplate.objects.filter(user=student).only("photo_path", "id_photo_path", "id_face_box").first()
    path, box = "", None
    if kind == "enrolment" and template:
        path = template.photo_path
    elif kind == "reference":
        path = ReferencePhoto.objects.filter(user=student).values_list("path", flat=True).first() or ""
    elif kind in ("id", "id_face") and template:
        path, box = template.id_photo_path, template.id_face_box
    if not path or (kind == "id_face" and not box):
        raise IdentityError("No such photo among your students.")
    try:
        data = private_path(path).read_bytes()
    except FileNotFoundError as exc:
        raise IdentityError("No such photo among your students.") from exc
    return face_enlarged(data, box) if kind == "id_face" and box else data


# The printed face on an ID is 30-60 px in the webcam frame: the review shows it at this size beside the others.
ENLARGED_SIDE = 240


def face_enlarged(jpeg: bytes, box: list[float]) -> bytes:
    """The face at `box` in the JPEG, with some margin, enlarged to ENLARGED_SIDE px square (bicubic)."""
    import cv2  # lazy: OpenCV stays out of the ASGI server

    image = decode_frame(jpeg, max_bytes=MAX_REFERENCE_BYTES)
    x1, y1, x2, y2 = box
    side = 1.6 * max(x2 - x1, y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    h, w = image.shape[:2]
    left, top = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    crop = image[top : int(min(h, cy + side / 2)), left : int(min(w, cx + side / 2))]
    scale = ENLARGED_SIDE / max(crop.shape[:2])
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    return encode_jpeg(cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC), quality=90)
