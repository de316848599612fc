"""A scripted analyzer for the WIRING tests of the consumer and the pool (never for vision or rules results).

The frame's colour says what it "shows", so a test scripts a whole exam with solid-colour JPEGs that go through the
real decoder: white is alice alone, black nobody, red two faces, blue someone else, green alice with a phone, gray
alice looking away, olive alice looking away with a phone (two alerts in one frame), yellow a slow frame (1 s),
magenta a server error. The worker resolves it by import path
(INFERENCE_ANALYZER="tests.proctoring.fakes:scripted_analyzer"), also in spawned processes and Celery workers.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from proctoring.vision.types import DetectedObject, EnrolledFace, Face, Identity, Observation, Pose

COLOURS = {
    "alice": (255, 255, 255),
    "nobody": (0, 0, 0),
    "two_faces": (0, 0, 255),
    "stranger": (255, 0, 0),
    "phone": (0, 255, 0),
    "looking_away": (128, 128, 128),
    "phone_away": (0, 128, 128),
    "slow": (0, 255, 255),
    "crash": (255, 0, 255),
}
SLOW_SECONDS = 1.0


def frame(scene: str, *, size: tuple[int, int] = (64, 48)) -> bytes:
    """A small JPEG of one solid colour (BGR) naming the scene."""
    image = np.zeros((size[1], size[0], 3), np.uint8)
    image[:] = COLOURS[scene]
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return data.tobytes()


def scene_of(image: np.ndarray) -> str:
    mean = image.reshape(-1, 3).mean(axis=0)
    return min(COLOURS, key=lambda name: float(np.abs(mean - np.array(COLOURS[name])).sum()))


class ScriptedAnalyzer:
    pack_name = "default"
    embedding_model_id = "scripted"
    loads = 0

    def load(self) -> None:
        ScriptedAnalyzer.loads += 1

    def scene(self, image: np.ndarray) -> str:
        return scene_of(image)

    def analyze(
        self,
        image: np.ndarray,
        *,
        enrolled: EnrolledFace | None = None,
        objects: frozenset[str] = frozenset({"cell phone"}),
        embed: bool = True,
        faces: tuple[Face, ...] | None = None,
    ) -> Observation:
        known_faces = faces
        scene = self.scene(image)
        h, w = image.shape[:2]
        one = (Face(box=(10.0, 10.0, 40.0, 40.0), score=0.97),)
        identity = Identity(similarity=0.82, threshold=0.4, match=True) if enrolled is not None and embed else None
        pose = Pose(0.0, 0.0, 0.0)
        faces, found = one, ()
        if scene == "slow":
            time.sleep(SLOW_SECONDS)
        elif scene == "crash":
            raise RuntimeError("scripted analyzer failure")
        elif scene == "nobody":
            faces, identity, pose = (), None, None
        elif scene == "two_faces":
            faces = one + (Face(box=(0.0, 0.0, 10.0, 10.0), score=0.8),)
        elif scene == "stranger" and enrolled is not None and embed:
            identity = Identity(similarity=0.12, threshold=0.4, match=False)
        elif scene == "phone" and "cell phone" in objects:
            # Like the real pipeline: no object detection unless asked (the skip rule asks for none).
            found = (DetectedObject("cell phone", (1.0, 1.0, 5.0, 5.0), 0.91),)
        elif scene == "looking_away":
            pose = Pose(50.0, 0.0, 0.0)
        elif scene == "phone_away":
            pose = Pose(50.0, 0.0, 0.0)
            if "cell phone" in objects:
                found = (DetectedObject("cell phone", (1.0, 1.0, 5.0, 5.0), 0.91),)
        return Observation(
            width=w,
            height=h,
            # Like the real pipeline: faces found on an unchanged frame are taken as they are (the skip rule).
            faces=known_faces if known_faces is not None else faces,
            identity=identity,
            pose=pose,
            objects=found,
            models={"pack": "scripted@1"},
        )


def scripted_analyzer(pack: str | None = None, *, threads: int | None = None) -> ScriptedAnalyzer:
    return ScriptedAnalyzer()


class SteadyAnalyzer(ScriptedAnalyzer):
    """Every frame shows alice alone, whatever its colours: for fuzzing, where a garbled but decodable frame must
    not read as the scripted "slow" or "crash" scene."""

    def scene(self, image: np.ndarray) -> str:
        return "alice"


def steady_analyzer(pack: str | None = None, *, threads: int | None = None) -> SteadyAnalyzer:
    return SteadyAnalyzer()
