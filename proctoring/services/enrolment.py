"""Face enrolment: turning a few good frames of a student into a face template.

1. Each frame passes quality checks (exactly one face, large enough, facing the camera, lit, sharp); a rejected
   frame gets a calm, specific reason the student can act on.
2. The accepted frames' embeddings must agree with each other (one person, not a swap half-way).
3. The template stores the mean of the unit embeddings (re-normalised), the pack and model id that made them, and
   the median head pose as the student's neutral pose. Re-enrolment replaces the template.

An embedding belongs to its model: ``proctoring.selectors.enrolled_face_of`` hands back the pack and model id with
the vector, and the analyzer refuses to compare it with embeddings from another model.
"""

from __future__ import annotations

import dataclasses
import functools
import statistics
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db import transaction

from accounts.models import User
from proctoring.models import FaceTemplate
from proctoring.services.evidence import private_delete, private_write
from proctoring.services.identity import IDENTITY_DIR, enrolment_verify
from proctoring.vision.base import l2_normalise
from proctoring.vision.frames import encode_jpeg, fit_within, mean_luma
from proctoring.vision.pipeline import Analyzer, cosine, get_analyzer
from proctoring.vision.types import Box, Face, Gaze, Pose

# Quality limits. Face size: below ~80 px across, the 112x112 embedding crop is upsampled and loses identity
# detail. Brightness is the mean grey level of the face box (0-255): under 50 faces lose contrast, over 210 they
# wash out. Sharpness is the variance of the Laplacian of the face resized to 112 px wide: a sharp webcam face
# scores in the hundreds; a motion-blurred or out-of-focus one falls below 25 (calibrated on the evaluation set's
# faces and their Gaussian-blurred copies, tests/proctoring/test_enrolment.py). A neutral pose must be roughly
# frontal so that it is a fair reference for "looking away".
MIN_FACE_PX = 80
MIN_BRIGHTNESS = 50.0
MAX_BRIGHTNESS = 210.0
MIN_SHARPNESS = 25.0
MAX_ENROL_YAW = 25.0
MAX_ENROL_PITCH = 25.0

MESSAGES = {
    "no_face": "We couldn't find a face in this photo. Sit facing the camera with your face in the frame.",
    "multiple_faces": "We can see more than one face. Make sure you are alone in the frame.",
    "face_too_small": "Your face is too small in the picture. Move a little closer to the camera.",
    "face_turned": "Please look straight at the camera for this photo.",
    "too_dark": "The picture is too dark. Add some light in front of you, for example a lamp or a window.",
    "too_bright": "The picture is too bright. Move away from direct light or a window behind the camera.",
    "blurry": "The picture is blurred. Hold still for a moment and check that the camera lens is clean.",
    "different_person": "This photo doesn't look like the same person as the others. Use photos of yourself only.",
    "unreadable": "This image couldn't be read. Try another photo.",
}


@dataclass(frozen=True)
class FrameCheck:
    ok: bool
    reason: str | None
    message: str
    # The whole picture's brightness (0-255), for the system check's lighting item.
    brightness: float = 0.0
    embedding: tuple[float, ...] | None = None
    pose: Pose | None = None
    face_box: Box | None = None
    quality: dict[str, float] = field(default_factory=dict)
    gaze: Gaze | None = None


@dataclass(frozen=True)
class EnrolmentResult:
    accepted: int
    rejections: list[tuple[int, str, str]]
    template: FaceTemplate | None

    @property
    def ok(self) -> bool:
        return self.template is not None


def _reject(reason: str, **extra: Any) -> FrameCheck:
    return FrameCheck(ok=False, reason=reason, message=MESSAGES[reason], **extra)


def _area(face: Face) -> float:
    return (face.box[2] - face.box[0]) * (face.box[3] - face.box[1])


def face_quality(*, image: np.ndarray, box: Box) -> dict[str, float]:
    """Pure: brightness, sharpness and size of the face box."""
    import cv2  # lazy: OpenCV stays out of the ASGI server

    h, w = image.shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    crop = image[y1:y2, x1:x2]
    if crop.size == 0:
        return {"brightness": 0.0, "sharpness": 0.0, "face_px": 0.0}
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(grey, fit_within(grey.shape[1], grey.shape[0], 112, 112), interpolation=cv2.INTER_AREA)
    return {
        "brightness": round(float(grey.mean()), 1),
        "sharpness": round(float(cv2.Laplacian(small, cv2.CV_64F).var()), 1),
        "face_px": float(min(x2 - x1, y2 - y1)),
    }


def enrolment_check_frame(*, image: np.ndarray, analyzer: Analyzer | None = None) -> FrameCheck:
    """Check one enrolment frame (BGR array) and, when it is good, return its embedding and absolute pose; any
    readable frame also gets its brightness."""
    check = _check_frame(image=image, analyzer=analyzer)
    if check.reason == "unreadable":
        return check
    return dataclasses.replace(check, brightness=round(mean_luma(image), 1))


def _check_frame(*, image: np.ndarray, analyzer: Analyzer | None) -> FrameCheck:

    analyzer = analyzer or get_analyzer()
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        return _reject("unreadable")
    faces = analyzer.detector.detect(image)
    if not faces:
        return _reject("no_face")
    if len(faces) > 1:
        return _reject("multiple_faces", face_box=max(faces, key=_area).box)
    face = faces[0]
    quality = face_quality(image=image, box=face.box)
    if quality["face_px"] < MIN_FACE_PX:
        return _reject("face_too_small", face_box=face.box, quality=quality)
    if quality["brightness"] < MIN_BRIGHTNESS:
        return _reject("too_dark", face_box=face.box, quality=quality)
    if quality["brightness"] > MAX_BRIGHTNESS:
        return _reject("too_bright", face_box=face.box, quality=quality)
    if quality["sharpness"] < MIN_SHARPNESS:
        return _reject("blurry", face_box=face.box, quality=quality)
    analysis = analyzer.describe_face(image, face)
    if analysis.pose is not None and (
        abs(analysis.pose.yaw) > MAX_ENROL_YAW or abs(analysis.pose.pitch) > MAX_ENROL_PITCH
    ):
        return _reject("face_turned", face_box=face.box, pose=analysis.pose, quality=quality)
    return FrameCheck(
        ok=True,
        reason=None,
        message="Good photo.",
        embedding=tuple(float(v) for v in analysis.embedding),
        pose=analysis.pose,
        face_box=face.box,
        quality=quality,
        gaze=analysis.gaze,
    )


def face_enrol(
    *, user: User, images: list[np.ndarray], min_frames: int = 3, analyzer: Analyzer | None = None
) -> EnrolmentResult:
    """Build and store ``user``'s face template from ``images`` (BGR arrays). Nothing is stored unless at least
    ``min_frames`` frames pass; re-enrolment replaces the previous template."""
    analyzer = analyzer or get_analyzer()
    checks = [_check_frame(image=image, analyzer=analyzer) for image in images]
    rejections = [(i, c.reason or "", c.message) for i, c in enumerate(checks) if not c.ok]
    good = [(i, c) for i, c in enumerate(checks) if c.ok]

    # 2. One person: drop frames that disagree with the consensus (the mean of the others), so one stranger's
    # photo cannot pull the template towards them.
    if len(good) >= 2:
        vectors = np.asarray([c.embedding for _, c in good], dtype=np.float32)
        total = vectors.sum(axis=0)
        consistent = []
        for (i, c), vector in zip(good, vectors, strict=True):
            others = total - vector
            if cosine(vector, others) >= analyzer.identity_threshold:
                consistent.append((i, c))
            else:
                rejections.append((i, "different_person", MESSAGES["different_person"]))
        good = consistent
    rejections.sort()
    if len(good) < min_frames:
        return EnrolmentResult(accepted=len(good), rejections=rejections, template=None)

    vectors = np.asarray([c.embedding for _, c in good], dtype=np.float32)
    mean = l2_normalise(vectors.mean(axis=0))
    poses = [c.pose for _, c in good if c.pose is not None]
    gazes = [c.gaze for _, c in good if c.gaze is not None]
    neutral = Pose(
        yaw=statistics.median(p.yaw for p in poses) if poses else 0.0,
        pitch=statistics.median(p.pitch for p in poses) if poses else 0.0,
        roll=statistics.median(p.roll for p in poses) if poses else 0.0,
    )
    agreement = min(cosine(v, mean) for v in vectors)
    # Keep the most typical photo (closest to the template), so that a person can compare the enrolment with the
    # reference photo (issue 11). It replaces the previous enrolment's photo.
    typical = max(range(len(good)), key=lambda j: cosine(vectors[j], mean))
    photo = private_write(directory=IDENTITY_DIR, data=encode_jpeg(images[good[typical][0]], quality=90))
    with transaction.atomic():
        previous = FaceTemplate.objects.select_for_update().filter(user=user).values_list("photo_path", "id_photo_path")
        old_photos = next(iter(previous), ())
        template, _ = FaceTemplate.objects.update_or_create(
            user=user,
            defaults={
                "pack": analyzer.embedding_pack,
                "model_id": analyzer.embedding_model_id,
                "embedding": mean.astype("<f4").tobytes(),
                "dim": int(mean.shape[0]),
                "neutral_yaw": round(neutral.yaw, 2),
                "neutral_pitch": round(neutral.pitch, 2),
                "neutral_roll": round(neutral.roll, 2),
                "neutral_gaze_yaw": round(statistics.median(g.yaw for g in gazes), 2) if gazes else None,
                "neutral_gaze_pitch": round(statistics.median(g.pitch for g in gazes), 2) if gazes else None,
                "frames_used": len(good),
                "quality": {
                    "frames_offered": len(images),
                    "frames_rejected": len(rejections),
                    "min_similarity_to_template": round(agreement, 4),
                    "min_brightness": min(c.quality["brightness"] for _, c in good),
                    "min_sharpness": min(c.quality["sharpness"] for _, c in good),
                    "min_face_px": min(c.quality["face_px"] for _, c in good),
                    "models": analyzer.models,
                },
                "photo_path": photo,
                # A photo ID was matched with the old face; the student shows it again with the new one.
                "id_photo_path": "",
                "id_similarity": None,
                "id_captured_at": None,
                "id_face_box": None,
            },
        )
        # A new enrolment is a new face: whatever was known of the old one no longer holds.
        template = enrolment_verify(user=user, reset=True) or template
        transaction.on_commit(functools.partial(_delete_files, old_photos))
    return EnrolmentResult(accepted=len(good), rejections=rejections, template=template)


def _delete_files(paths: tuple[str, ...]) -> None:
    for path in paths:
        private_delete(path)
