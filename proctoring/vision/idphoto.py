"""A photo ID held up beside the student's face (issue 11): find both faces in one webcam frame.

The student holds the card next to their face, so one frame shows two faces: the live one, and the portrait printed
on the card, four to six times smaller (a 25 mm portrait beside a 140 mm face at the same distance). Both must be
there. The live face proves who holds the card; the printed face is what the enrolment is matched with. A frame
with one face cannot say whether it shows a card or the student, so it is refused with a request to hold the card
beside the face.

The detector sees the whole 640x480 frame at 192 px, where a 35 px portrait becomes 10 px and is easily missed, so
the frame is searched again in two overlapping halves (each at about 1.6 times the resolution). That costs two more
detector runs (about 2 ms), once per ID photo, never per exam frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from proctoring.vision.base import FaceDetector
from proctoring.vision.types import Box, Face

# The portrait's face, below this many pixels across, is upsampled to the 112 px embedding crop and loses the detail
# that tells people apart: on the test card the same person's similarity falls from 0.90 at 35 px to 0.76 at 28 px.
MIN_ID_FACE_PX = 32
# Two detections of one face (from the whole frame and a half) overlap by more than this.
SAME_FACE_IOU = 0.3
HALF = 0.625  # each half covers this much of the width, so a face on the middle line is whole in one of them


@dataclass(frozen=True)
class IdFaces:
    """The faces in an ID frame: the live one (the largest), the printed one (the next), and how many in all."""

    live: Face | None
    card: Face | None
    count: int


def _iou(a: Box, b: Box) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _shifted(face: Face, dx: float) -> Face:
    x1, y1, x2, y2 = face.box
    return Face(
        box=(x1 + dx, y1, x2 + dx, y2),
        score=face.score,
        keypoints=tuple((x + dx, y) for x, y in face.keypoints) if face.keypoints else face.keypoints,
    )


def width(face: Face) -> float:
    return min(face.box[2] - face.box[0], face.box[3] - face.box[1])


def id_faces(detector: FaceDetector, image: np.ndarray) -> IdFaces:
    """Every distinct face in the frame, found in the whole frame and in its two halves, largest first."""
    faces: list[Face] = list(detector.detect(image))
    w = image.shape[1]
    span = int(round(w * HALF))
    for x0 in (0, w - span):
        for face in detector.detect(np.ascontiguousarray(image[:, x0 : x0 + span])):
            moved = _shifted(face, float(x0))
            if all(_iou(moved.box, seen.box) < SAME_FACE_IOU for seen in faces):
                faces.append(moved)
    faces.sort(key=width, reverse=True)
    return IdFaces(live=faces[0] if faces else None, card=faces[1] if len(faces) > 1 else None, count=len(faces))
