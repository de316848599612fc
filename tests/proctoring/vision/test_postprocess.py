"""The pure steps of each model class, on canned arrays: no model file, no runtime.

These pin the decoding maths (anchors, letterbox mapping, label ids, pose axes, alignment) so that a change in them
shows up here before it shows up as a wrong answer on a real photo.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from proctoring.vision import blazeface, facemesh, ssd
from proctoring.vision.arcface import ARCFACE_TEMPLATE, ArcFaceEmbedder, similarity_transform
from proctoring.vision.base import l2_normalise
from proctoring.vision.blazeface import BlazeFaceDetector, anchors
from proctoring.vision.registry import UnknownModelClass, model_class
from proctoring.vision.ssd import SSDMobileNetDetector
from proctoring.vision.types import Face


def test_blazeface_anchor_grids_match_mediapipe():
    assert anchors("short").shape == (896, 2)
    assert anchors("full").shape == (2304, 2)
    # first anchor of the full-range 48x48 grid sits half a cell from the corner
    assert anchors("full")[0] == pytest.approx((0.5 / 48, 0.5 / 48))


def canned_blazeface(variant: str, index: int, *, logit: float = 5.0, size_px: float = 40.0):
    count = anchors(variant).shape[0]
    regressors = np.zeros((1, count, 16), dtype=np.float32)
    logits = np.full((1, count, 1), -10.0, dtype=np.float32)
    regressors[0, index, 2:4] = size_px  # width, height in input pixels, centred on the anchor
    regressors[0, index, 4:16] = np.array([-8, -5, 8, -5, 0, 2, 0, 10, -16, 0, 16, 0], dtype=np.float32)
    logits[0, index, 0] = logit
    return regressors, logits


def test_blazeface_postprocess_maps_a_detection_back_through_the_letterbox():
    detector = BlazeFaceDetector(params={"variant": "full", "score_threshold": 0.5})
    index = 24 * 48 + 24  # anchor at the centre of the 192 grid: (24.5/48, 24.5/48)
    # a 640x480 frame letterboxed into 192x192: scale 0.3, 24 px of padding above and below
    meta = {"scale": 0.3, "pad": (0, 24), "size": 192, "image": (640, 480)}
    faces = detector.postprocess(canned_blazeface("full", index), meta)

    assert len(faces) == 1
    face = faces[0]
    cx = (24.5 / 48) * 192 / 0.3
    cy = ((24.5 / 48) * 192 - 24) / 0.3
    assert (face.box[0] + face.box[2]) / 2 == pytest.approx(cx, abs=0.1)
    assert (face.box[1] + face.box[3]) / 2 == pytest.approx(cy, abs=0.1)
    assert face.box[2] - face.box[0] == pytest.approx(40 / 0.3, abs=0.1)
    assert face.score == pytest.approx(1 / (1 + math.exp(-5)), abs=1e-3)
    # 5 InsightFace-order points: image-left eye is left of the image-right eye, mouth corners straddle the centre
    (lx, _), (rx, _), _, (mlx, _), (mrx, _) = face.keypoints
    assert lx < rx and mlx < cx < mrx


def test_blazeface_postprocess_drops_low_scores_and_merges_overlaps():
    detector = BlazeFaceDetector(params={"variant": "short", "score_threshold": 0.5})
    regressors, logits = canned_blazeface("short", 100, logit=3.0)
    # the neighbouring anchor (same cell, second anchor) sees the same face: weighted NMS blends them into one
    regressors[0, 101] = regressors[0, 100]
    logits[0, 101, 0] = 2.0
    logits[0, 500, 0] = -1.0  # below threshold
    meta = {"scale": 1.0, "pad": (0, 0), "size": 128, "image": (128, 128)}
    faces = detector.postprocess((regressors, logits), meta)
    assert len(faces) == 1


def test_blazeface_detect_runs_on_an_injected_session():
    """The model class takes any object shaped like an onnxruntime session: here one that returns canned outputs."""
    outputs = canned_blazeface("full", 24 * 48 + 24)
    seen = {}

    class FakeSession:
        def get_inputs(self):
            return [SimpleNamespace(name="input")]

        def run(self, names, feed):
            seen["shape"] = feed["input"].shape
            return [outputs[1], outputs[0]]  # order must not matter: picked by shape

    detector = BlazeFaceDetector(params={"variant": "full"}, session=FakeSession())
    detector.load()  # idempotent: keeps the injected session
    faces = detector.detect(np.zeros((480, 640, 3), dtype=np.uint8))
    assert seen["shape"] == (1, 3, 192, 192)
    assert len(faces) == 1


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def canned_ssd(entries, count: int = 8):
    """entries: (anchor index, coco id, score, [ymin, xmin, ymax, xmax]) with the box equal to the anchor (zero
    encodings decode to the anchor itself)."""
    logits = np.full((1, count, 91), -10.0, dtype=np.float32)
    encodings = np.zeros((1, count, 1, 4), dtype=np.float32)
    anchors = np.tile(np.array([[0.0, 0.0, 0.1, 0.1]], dtype=np.float32), (count, 1))
    for index, coco_id, score, box in entries:
        logits[0, index, coco_id] = logit(score)
        anchors[index] = box
    return (logits, encodings), anchors


def test_ssd_postprocess_names_coco_ids_and_scales_normalised_boxes():
    outputs, anchors = canned_ssd(
        [
            (0, 77, 0.9, [0.1, 0.2, 0.5, 0.6]),  # cell phone
            (1, 1, 0.8, [0.0, 0.0, 1.0, 0.5]),  # person
            (2, 77, 0.3, [0.3, 0.3, 0.4, 0.4]),  # a weak phone: below threshold
            (3, 77, 0.7, [0.11, 0.2, 0.5, 0.6]),  # the same phone again: suppressed by NMS
        ]
    )
    detector = SSDMobileNetDetector(params={"score_threshold": 0.5})
    meta = {"image": (640, 480), "anchors": anchors, "labels": None}
    found = detector.postprocess(outputs, meta)

    assert [o.label for o in found] == ["cell phone", "person"]
    assert found[0].box == pytest.approx((0.2 * 640, 0.1 * 480, 0.6 * 640, 0.5 * 480), abs=0.1)
    assert found[0].score == pytest.approx(0.9, abs=1e-3)
    # only the requested labels are decoded
    assert [o.label for o in detector.postprocess(outputs, {**meta, "labels": frozenset({"person"})})] == ["person"]


def test_ssd_box_decoding_follows_the_tf_box_coder():
    anchors = np.array([[0.2, 0.2, 0.4, 0.6]], dtype=np.float32)  # centre (0.3, 0.4), h 0.2, w 0.4
    encodings = np.array([[1.0, -2.0, 5 * math.log(2), 0.0]], dtype=np.float32)  # y +0.1*h, x -0.2*w, h x2
    (ymin, xmin, ymax, xmax) = ssd.decode_boxes(encodings, anchors)[0]
    assert (ymin + ymax) / 2 == pytest.approx(0.3 + 0.1 * 0.2)
    assert (xmin + xmax) / 2 == pytest.approx(0.4 - 0.2 * 0.4)
    assert ymax - ymin == pytest.approx(0.4) and xmax - xmin == pytest.approx(0.4)


def test_ssd_per_label_thresholds_override_the_default():
    outputs, anchors = canned_ssd([(0, 77, 0.45, [0, 0, 0.5, 0.5]), (1, 84, 0.45, [0.5, 0.5, 1, 1])])
    detector = SSDMobileNetDetector(params={"score_threshold": 0.5, "thresholds": {"cell phone": 0.4}})
    found = detector.postprocess(outputs, {"image": (10, 10), "anchors": anchors, "labels": None})
    assert [o.label for o in found] == ["cell phone"]


class TwoPrecisions(SSDMobileNetDetector):
    """The SSD with canned outputs for its fast (bf16) run and its f32 recheck, recording which ran."""

    def __init__(self, fast, exact, anchors, *, with_f32: bool = True) -> None:
        super().__init__(params={"score_threshold": 0.5}, session="fast")
        self.anchors, self.exact, self.ran = anchors, ("f32" if with_f32 else None), []
        self.outputs = {"fast": fast, "f32": exact}

    def preprocess(self, image):
        return image, {"image": (640, 480), "anchors": self.anchors}

    def infer(self, tensors, session=None):
        self.ran.append(session or self.session)
        return self.outputs[session or self.session]


def two_precisions(fast_score: float, f32_score: float, *, coco_id: int = 77, with_f32: bool = True) -> TwoPrecisions:
    box = [0.1, 0.2, 0.5, 0.6]
    fast, anchors = canned_ssd([(0, coco_id, fast_score, box)])
    exact, _ = canned_ssd([(0, coco_id, f32_score, box)])
    return TwoPrecisions(fast, exact, anchors, with_f32=with_f32)


PHONE = frozenset({"cell phone"})


@pytest.mark.parametrize("fast_score,f32_score,found", [(0.48, 0.55, 0.55), (0.53, 0.46, None), (0.40, 0.51, 0.51)])
def test_a_bf16_score_near_the_threshold_is_decided_by_the_f32_run(fast_score, f32_score, found):
    # On the AMX Xeon bf16 put 5 of 12 small phones that f32 scored 0.50-0.64 under 0.5.
    detector = two_precisions(fast_score, f32_score)
    phones = [o.score for o in detector.detect(np.zeros((4, 4, 3), np.uint8), labels=PHONE)]
    assert detector.ran == ["fast", "f32"] and detector.last_rechecked
    assert phones == ([pytest.approx(found, abs=1e-3)] if found else [])


@pytest.mark.parametrize("fast_score", [0.9, 0.2, 0.01])
def test_a_clear_bf16_score_is_not_run_again(fast_score):
    detector = two_precisions(fast_score, 0.5)
    phones = [o.score for o in detector.detect(np.zeros((4, 4, 3), np.uint8), labels=PHONE)]
    assert detector.ran == ["fast"] and not detector.last_rechecked
    assert phones == ([pytest.approx(fast_score, abs=1e-3)] if fast_score >= 0.5 else [])


def test_only_the_requested_labels_and_only_a_bf16_run_are_rechecked():
    person = two_precisions(0.5, 0.9, coco_id=1)  # a person at the threshold, but only phones were asked for
    person.detect(np.zeros((4, 4, 3), np.uint8), labels=PHONE)
    assert person.ran == ["fast"]
    in_f32 = two_precisions(0.49, 0.55, with_f32=False)  # the fast run is f32 already: nothing to recheck with
    assert in_f32.detect(np.zeros((4, 4, 3), np.uint8), labels=PHONE) == [] and in_f32.ran == ["fast"]


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Image axes (x right, y down, z away from the camera). Positive yaw turns the face towards the image's right,
    positive pitch tilts it up, positive roll tilts it clockwise."""
    y, p, r = (math.radians(v) for v in (yaw, pitch, roll))
    ry = np.array([[math.cos(y), 0, -math.sin(y)], [0, 1, 0], [math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return ry @ rx @ rz


def synthetic_mesh(yaw=0.0, pitch=0.0, roll=0.0) -> np.ndarray:
    points = np.zeros((468, 3))
    points[facemesh.OUTER_EYE_IMAGE_LEFT] = (-45, 0, 0)
    points[facemesh.OUTER_EYE_IMAGE_RIGHT] = (45, 0, 0)
    points[facemesh.FOREHEAD] = (0, -70, 0)
    points[facemesh.CHIN] = (0, 80, 0)
    return points @ rotation(yaw, pitch, roll).T + (320, 240, 0)


def test_pose_of_a_frontal_mesh_is_zero():
    pose = facemesh.pose_from_landmarks(synthetic_mesh())
    assert (pose.yaw, pose.pitch, pose.roll) == pytest.approx((0, 0, 0), abs=0.01)


@pytest.mark.parametrize("angles", [(20, 0, 0), (-35, 0, 0), (0, 15, 0), (0, -20, 0), (0, 0, 12), (25, 10, -8)])
def test_pose_recovers_known_rotations(angles):
    pose = facemesh.pose_from_landmarks(synthetic_mesh(*angles))
    assert (pose.yaw, pose.pitch, pose.roll) == pytest.approx(angles, abs=0.5)


def test_a_mirrored_mesh_flips_yaw_and_roll_but_not_pitch():
    mesh = synthetic_mesh(25, 10, -8)
    mirrored = mesh.copy()
    mirrored[:, 0] = 640 - mirrored[:, 0]
    # mirroring also swaps which eye is on the image's left
    left, right = facemesh.OUTER_EYE_IMAGE_LEFT, facemesh.OUTER_EYE_IMAGE_RIGHT
    mirrored[[left, right]] = mirrored[[right, left]]
    pose = facemesh.pose_from_landmarks(mirrored)
    assert (pose.yaw, pose.pitch, pose.roll) == pytest.approx((-25, 10, 8), abs=0.5)


def test_similarity_transform_recovers_a_known_similarity():
    angle, scale, shift = math.radians(12), 1.7, np.array([30.0, -12.0])
    rot = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    src = ARCFACE_TEMPLATE
    dst = src @ rot.T + shift
    matrix = similarity_transform(src, dst)
    assert matrix[:, :2] == pytest.approx(rot, abs=1e-9)
    assert matrix[:, 2] == pytest.approx(shift, abs=1e-9)


def test_embedder_postprocess_normalises_and_keeps_a_zero_vector_finite():
    embedder = ArcFaceEmbedder(params={"model_id": "m"})
    vector = embedder.postprocess(np.array([[3.0, 4.0]]), {})
    assert vector == pytest.approx([0.6, 0.8])
    assert np.all(l2_normalise(np.zeros(4)) == 0)


def test_embedder_refuses_a_face_without_five_points():
    with pytest.raises(ValueError, match="5 keypoints"):
        ArcFaceEmbedder(params={}).preprocess(np.zeros((10, 10, 3), np.uint8), Face((0, 0, 5, 5), 0.9, ()))


def test_registry_resolves_names_and_refuses_unknown_ones():
    assert model_class("blazeface") is BlazeFaceDetector
    assert model_class("proctoring.vision.blazeface:BlazeFaceDetector") is BlazeFaceDetector
    with pytest.raises(UnknownModelClass):
        model_class("no_such_model")
    with pytest.raises(UnknownModelClass):
        model_class("proctoring.vision.blazeface:anchors")  # importable but not a Model


def test_five_points_come_from_the_blazeface_eyes_nose_and_mouth():
    points = np.array([[10, 10], [30, 10], [20, 20], [20, 30], [0, 12], [40, 12]], dtype=np.float64)
    five = blazeface.five(points)
    assert five[0] == (10, 10) and five[1] == (30, 10) and five[2] == (20, 20)
    assert five[3][0] < 20 < five[4][0]
