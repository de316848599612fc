"""Frame -> Observation: the one interface the rest of the platform uses.

    analyzer = get_analyzer()              # once per worker process; loads and verifies the pack
    obs = analyzer.analyze(image, enrolled=enrolled_face, objects=frozenset({"cell phone"}))

Per frame, in order:

1. detect every face (box, score, 5 keypoints);
2. pick the main face (the largest: the student sits closest to the camera);
3. head pose of the main face, with refined keypoints when the pose model yields landmarks;
4. its embedding, aligned on those keypoints, and cosine similarity to the enrolled one (only when an enrolment is
   given, and only when it came from this analyzer's embedding model; otherwise ``identity_error``);
5. objects of the requested COCO labels on the whole frame.

Each stage's wall time and its bare model-inference time are recorded (``timings_ms``), so the benchmark can tell
inference from the work around it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import FaceDetector, FaceEmbedder, Keypoints, ObjectDetector, PoseEstimator, l2_normalise
from .packs import Manifest, ModelPackError, build_models, embedding_pack_of
from .types import DetectedObject, EnrolledFace, Face, Gaze, Identity, Observation, Pose

DEFAULT_OBJECTS = frozenset({"cell phone"})


@dataclass(frozen=True)
class FaceAnalysis:
    """What enrolment needs of one face: its box, absolute pose, alignment keypoints and embedding."""

    face: Face
    pose: Pose | None
    keypoints: Keypoints
    embedding: np.ndarray
    gaze: Gaze | None = None


class Analyzer:
    def __init__(self, *, manifest: Manifest, models: dict[str, Any]) -> None:
        missing = [role for role in ("detector", "embedder") if role not in models]
        if missing:
            raise ModelPackError(f"pack {manifest.name!r} has no {', '.join(missing)} model")
        self.manifest = manifest
        self.pack_name = manifest.name
        # The pack whose embedding space this analyzer's embeddings are in: a pack that takes its embedder from
        # another (default-int8, yolo: from default) compares with enrolments made under that one.
        self.embedding_pack = manifest.role_pack("embedder")
        self.detector: FaceDetector = models["detector"]
        self.embedder: FaceEmbedder = models["embedder"]
        self.pose_estimator: PoseEstimator | None = models.get("pose")
        self.object_detector: ObjectDetector | None = models.get("objects")
        self.embedding_model_id = self.embedder.model_id
        self.identity_threshold = float(self.embedder.params.get("threshold", 0.4))
        self.models = {"pack": f"{manifest.name}@{manifest.version}", **manifest.model_versions()}
        self._lock = threading.Lock()

    def load(self) -> None:
        """Build every session now (idempotent), so a corrupt file fails at start-up rather than on a frame."""
        for model in (self.detector, self.embedder, self.pose_estimator, self.object_detector):
            if model is not None:
                model.load()

    # -- one face -------------------------------------------------------------------------------------------------

    def main_face(self, faces: list[Face] | tuple[Face, ...]) -> Face | None:
        if not faces:
            return None
        return max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))

    def describe_face(self, image: np.ndarray, face: Face) -> FaceAnalysis:
        pose, keypoints, gaze = (None, None, None)
        if self.pose_estimator is not None:
            pose, keypoints, gaze = self.pose_estimator.estimate_with_gaze(image, face)
        keypoints = keypoints or face.keypoints
        embedding = self.embedder.embed(image, Face(box=face.box, score=face.score, keypoints=keypoints))
        return FaceAnalysis(face=face, pose=pose, keypoints=keypoints, embedding=embedding, gaze=gaze)

    # -- one frame ------------------------------------------------------------------------------------------------

    def analyze(
        self,
        image: np.ndarray,
        *,
        enrolled: EnrolledFace | None = None,
        objects: frozenset[str] = DEFAULT_OBJECTS,
        embed: bool = True,
        faces: tuple[Face, ...] | None = None,
    ) -> Observation:
        """What one frame shows. `enrolled`: compare the main face with this enrolment (and make the pose relative
        to its neutral pose); `embed=False` keeps the neutral pose but skips the embedding (the caller re-uses a
        match measured on an unchanged frame); `objects`: the labels to look for, none to skip the detector;
        `faces`: the faces found on an unchanged frame, which skip the face detector (pose and gaze are still
        measured here, within the main one's box)."""
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError("analyze() takes a BGR uint8 image of shape (H, W, 3); decode bytes with decode_frame")
        # The sessions are shared by threads of one worker; onnxruntime allows concurrent run() but the per-model
        # timing fields do not, and one core gains nothing from two frames at once.
        with self._lock:
            return self._analyze(image, enrolled=enrolled, objects=objects, embed=embed, known_faces=faces)

    def _analyze(
        self,
        image: np.ndarray,
        *,
        enrolled: EnrolledFace | None,
        objects: frozenset[str],
        embed: bool,
        known_faces: tuple[Face, ...] | None = None,
    ) -> Observation:
        timings: dict[str, float] = {}
        start = time.perf_counter()

        def lap(stage: str, t0: float, model: Any = None) -> float:
            now = time.perf_counter()
            timings[stage] = round((now - t0) * 1000.0, 3)
            if model is not None:
                timings[f"{stage}_infer"] = round(model.last_infer_ms, 3)
            return now

        # 1-2. faces, main face
        t = time.perf_counter()
        remembered = self.main_face(known_faces) if known_faces is not None else None
        if remembered is not None and remembered.box[2] - remembered.box[0] < FACE_REUSE_MIN_WIDTH:
            known_faces = None  # too small a face for Face Mesh to be placed by an old box
        if known_faces is None:
            faces = self.detector.detect(image)
            t = lap("detect", t, self.detector)
        else:
            faces = list(known_faces)
        main = self.main_face(faces)

        # 3. pose (absolute), and keypoints for alignment
        pose: Pose | None = None
        gaze: Gaze | None = None
        keypoints = main.keypoints if main else ()
        if main is not None and self.pose_estimator is not None:
            absolute, refined, eyes = self.pose_estimator.estimate_with_gaze(image, main)
            if known_faces is not None and moved_within(main, refined):
                # The face moved within its remembered box: Face Mesh placed by that box reads a pose up to 20
                # degrees off on small faces (bench/face_box_reuse.py). Find the faces again, and measure on them
                # (the stages time the detector and the second pose; the first counts in the total only).
                t = time.perf_counter()
                faces = self.detector.detect(image)
                t = lap("detect", t, self.detector)
                main = self.main_face(faces)
                keypoints = main.keypoints if main else ()
                absolute, refined, eyes = (
                    self.pose_estimator.estimate_with_gaze(image, main) if main else (None, None, None)
                )
            t = lap("pose", t, self.pose_estimator)
            keypoints = refined or keypoints
            if absolute is not None:
                neutral = enrolled.neutral if enrolled is not None else Pose(0.0, 0.0, 0.0)
                pose = relative_pose(absolute, neutral)
            if eyes is not None:
                gaze = relative_gaze(eyes, enrolled.neutral_gaze if enrolled is not None else None)

        # 4. identity
        identity: Identity | None = None
        identity_error: str | None = None
        if main is not None and enrolled is not None:
            identity_error = self.compatibility_error(enrolled)
            if identity_error is None and embed:
                vector = self.embedder.embed(image, Face(box=main.box, score=main.score, keypoints=keypoints))
                t = lap("embed", t, self.embedder)
                similarity = cosine(vector, np.asarray(enrolled.embedding, dtype=np.float32))
                identity = Identity(
                    similarity=round(similarity, 4),
                    threshold=self.identity_threshold,
                    match=similarity >= self.identity_threshold,
                )

        # 5. objects
        found: tuple[DetectedObject, ...] = ()
        if objects and self.object_detector is not None:
            found = tuple(self.object_detector.detect(image, labels=frozenset(objects)))
            t = lap("objects", t, self.object_detector)

        timings["total"] = round((time.perf_counter() - start) * 1000.0, 3)
        if main is not None and keypoints:
            faces = [Face(box=f.box, score=f.score, keypoints=keypoints) if f is main else f for f in faces]
        return Observation(
            width=int(image.shape[1]),
            height=int(image.shape[0]),
            faces=tuple(faces),
            identity=identity,
            pose=pose,
            gaze=gaze,
            objects=found,
            identity_error=identity_error,
            timings_ms=timings,
            models=dict(self.models),
        )

    def compatibility_error(self, enrolled: EnrolledFace) -> str | None:
        """Why an enrolment cannot be compared with this analyzer's embeddings, or None when it can."""
        if embedding_pack_of(enrolled.pack) != self.embedding_pack or enrolled.model_id != self.embedding_model_id:
            return (
                f"enrolled with {enrolled.pack}/{enrolled.model_id}, but this server uses "
                f"{self.embedding_pack}/{self.embedding_model_id}: the student must re-enrol"
            )
        if len(enrolled.embedding) != self.embedder.dim:
            return f"enrolled embedding has {len(enrolled.embedding)} values, expected {self.embedder.dim}: re-enrol"
        return None


# How far (a share of the face's width) Face Mesh's keypoints may lie from those remembered with a re-used face box
# before the face counts as moved and is detected again: within it, the pose read in the remembered box stays within
# about 2 degrees of the pose in a fresh one (bench/face_box_reuse.py).
FACE_DRIFT = 0.08
# Faces narrower than this are always detected again: on a face 67 pixels wide a 4-pixel move read a pose 20 degrees
# off in the remembered box, within FACE_DRIFT (bench/face_box_reuse.py); from 95 pixels up, within 3.5.
FACE_REUSE_MIN_WIDTH = 90.0


def moved_within(face: Face, keypoints: Keypoints | None) -> bool:
    """Pure: whether the keypoints Face Mesh found in a re-used face's box lie more than FACE_DRIFT of the box's width
    from the keypoints remembered with it (or could not be found, or compared)."""
    if not keypoints or not face.keypoints or len(keypoints) != len(face.keypoints):
        return True
    width = max(face.box[2] - face.box[0], 1.0)
    now, then = np.asarray(keypoints, dtype=np.float64), np.asarray(face.keypoints, dtype=np.float64)
    return bool(np.max(np.linalg.norm(now - then, axis=1)) > FACE_DRIFT * width)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors (normalised here too: stored templates are means of unit vectors)."""
    return float(np.dot(l2_normalise(a), l2_normalise(b)))


def relative_pose(pose: Pose, neutral: Pose) -> Pose:
    def wrap(deg: float) -> float:
        return round((deg + 180.0) % 360.0 - 180.0, 2)

    return Pose(
        yaw=wrap(pose.yaw - neutral.yaw), pitch=wrap(pose.pitch - neutral.pitch), roll=wrap(pose.roll - neutral.roll)
    )


def relative_gaze(gaze: Gaze, neutral: Gaze | None) -> Gaze:
    """Gaze relative to the student's own neutral gaze (recorded at enrolment), or as measured without one."""
    if neutral is None:
        return gaze
    return Gaze(yaw=round(gaze.yaw - neutral.yaw, 2), pitch=round(gaze.pitch - neutral.pitch, 2))


_analyzers: dict[tuple[str, int], Analyzer] = {}
_analyzers_lock = threading.Lock()


def get_analyzer(pack: str | None = None, *, threads: int | None = None) -> Analyzer:
    """The process-wide analyzer for a pack: built, verified and loaded on first use, then reused.

    Raises ModelPackError (naming `python manage.py model_packs install PACK`) when the pack is missing or corrupt.
    """
    from django.conf import settings  # lazy: the engine is Django-free

    name = pack or settings.MODEL_PACK
    count = int(threads or settings.INFERENCE_THREADS)
    key = (name, count)
    analyzer = _analyzers.get(key)
    if analyzer is not None:
        return analyzer
    with _analyzers_lock:
        analyzer = _analyzers.get(key)
        if analyzer is None:
            manifest, models = build_models(name, threads=count)
            analyzer = Analyzer(manifest=manifest, models=models)
            analyzer.load()
            _analyzers[key] = analyzer
    return analyzer


def reset_analyzers() -> None:
    """Forget the cached analyzers (tests that swap MODEL_DIR)."""
    with _analyzers_lock:
        _analyzers.clear()
