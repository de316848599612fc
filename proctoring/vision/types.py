"""The shapes that cross the boundary between the vision engine and the rest of the platform.

Everything here is plain data (frozen dataclasses, tuples, floats) so that an observation can be pickled to a
worker process, sent as JSON through Celery, stored compactly per frame, and re-read by the pure rules module
without any model loaded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels of the analysed frame


@dataclass(frozen=True)
class Face:
    box: Box
    score: float
    keypoints: tuple[tuple[float, float], ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Face:
        """A face as Observation.to_dict() writes it."""
        return cls(box=tuple(data["box"]), score=data["score"],
                   keypoints=tuple(tuple(k) for k in data.get("keypoints", ())))  # fmt: skip


@dataclass(frozen=True)
class Identity:
    similarity: float
    threshold: float
    match: bool


@dataclass(frozen=True)
class Pose:
    """Head pose in degrees. In an observation it is relative to the student's neutral pose when one is known."""

    yaw: float
    pitch: float
    roll: float


@dataclass(frozen=True)
class Gaze:
    """Where the eyes look within the head, in degrees, with the head pose's signs: yaw > 0 when the eyes turn
    towards the image's right, pitch > 0 when they look up. In an observation it is relative to the student's
    neutral gaze when one is known. A mirrored image flips yaw."""

    yaw: float
    pitch: float


@dataclass(frozen=True)
class DetectedObject:
    label: str
    box: Box
    score: float


@dataclass(frozen=True)
class EnrolledFace:
    """What the analysis needs of a student's enrolment: their embedding and neutral pose, and which model made it."""

    embedding: tuple[float, ...]
    pack: str
    model_id: str
    neutral: Pose = Pose(0.0, 0.0, 0.0)
    # The gaze measured at enrolment, when the pack has gaze (None: enrolled before, or by a pack without it).
    neutral_gaze: Gaze | None = None


@dataclass(frozen=True)
class Observation:
    """What one frame shows. Produced by the vision pipeline; consumed by rules, storage and the CLI."""

    width: int
    height: int
    faces: tuple[Face, ...] = ()
    identity: Identity | None = None
    pose: Pose | None = None
    gaze: Gaze | None = None
    objects: tuple[DetectedObject, ...] = ()
    # An embedding from another model than the enrolment's: identity is unknown and the student must re-enrol.
    identity_error: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)

    @property
    def face_count(self) -> int:
        return len(self.faces)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Observation:
        def opt(kind: Any, value: dict[str, Any] | None) -> Any:
            return kind(**value) if value is not None else None

        return cls(
            width=data["width"],
            height=data["height"],
            faces=tuple(Face.from_dict(f) for f in data.get("faces", ())),
            identity=opt(Identity, data.get("identity")),
            pose=opt(Pose, data.get("pose")),
            gaze=opt(Gaze, data.get("gaze")),
            objects=tuple(
                DetectedObject(label=o["label"], box=tuple(o["box"]), score=o["score"]) for o in data.get("objects", ())
            ),
            identity_error=data.get("identity_error"),
            timings_ms=dict(data.get("timings_ms", {})),
            models=dict(data.get("models", {})),
        )
