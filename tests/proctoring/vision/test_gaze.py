"""Gaze (issue 11): MediaPipe's iris landmark model on the eyes Face Mesh finds, the iris centre against the eye
corners, relative to the student's neutral gaze. The pure geometry on canned points; the real default pack on the
evaluation photos, mirrored, and with the eyes' insides moved sideways (the corners and lids stay where they are)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from django.core.management import call_command

from proctoring.vision.facemesh import EYE_GAIN, EYES, eye_offset, gaze_from_offsets
from proctoring.vision.pipeline import relative_gaze
from proctoring.vision.types import Gaze

FRONTAL = ("astronaut", "grace_hopper", "webcam_man")


def test_the_iris_in_the_middle_of_the_eye_is_straight_ahead():
    a, b = np.array([100.0, 50.0]), np.array([140.0, 50.0])
    assert eye_offset(np.array([120.0, 50.0]), a, b) == (0.0, 0.0)
    assert eye_offset(np.array([128.0, 46.0]), a, b) == pytest.approx((0.4, -0.2))
    gaze = gaze_from_offsets([(0.4, -0.2), (0.4, -0.2)])
    assert gaze.yaw == pytest.approx(math.degrees(math.asin(0.4 * EYE_GAIN)), abs=0.01)  # towards the image's right
    assert gaze.pitch == pytest.approx(math.degrees(math.asin(0.2 * EYE_GAIN)), abs=0.01)  # up
    # A tilted eye line: the offset is measured along it, not along the image's axes.
    along = np.array([math.cos(0.3), math.sin(0.3)])
    assert eye_offset(a + 28 * along, a, a + 40 * along) == pytest.approx((0.4, 0.0), abs=1e-9)
    assert relative_gaze(Gaze(12.0, -3.0), Gaze(2.0, -5.0)) == Gaze(10.0, 2.0)
    assert relative_gaze(Gaze(12.0, -3.0), None) == Gaze(12.0, -3.0)


def analyse(analyzer, image):
    return analyzer.analyze(image, objects=frozenset())


@pytest.mark.parametrize("name", FRONTAL)
def test_a_frontal_face_looking_at_the_camera_has_a_small_gaze_that_a_mirror_flips(analyzer, photo, evalset, name):
    image = evalset.webcam_frame(photo(name))
    seen = analyse(analyzer, image)
    assert seen.gaze is not None, name
    assert abs(seen.gaze.yaw) < 15 and abs(seen.gaze.pitch) < 20, (name, seen.gaze)
    mirrored = analyse(analyzer, np.ascontiguousarray(image[:, ::-1]))
    assert mirrored.gaze is not None
    assert mirrored.gaze.yaw == pytest.approx(-seen.gaze.yaw, abs=4.0), (name, seen.gaze, mirrored.gaze)
    assert mirrored.gaze.pitch == pytest.approx(seen.gaze.pitch, abs=4.0)


def _eyes_moved(analyzer, image, shift_fraction: float) -> np.ndarray:
    """The same photo with the inside of each eye (between its corners, between its lids) moved sideways by a
    fraction of the eye's width: the iris moves, the face around it does not."""
    face = analyzer.main_face(analyzer.detector.detect(image))
    estimator = analyzer.pose_estimator
    tensors, meta = estimator.preprocess(image, face)
    estimator.postprocess(estimator.infer(tensors), meta)
    points = meta["points"]
    out = image.copy()
    for a, b, _mirrored in EYES:
        (x1, y1), (x2, y2) = points[a, :2], points[b, :2]
        left, right = int(min(x1, x2)), int(max(x1, x2))
        width = right - left
        top, bottom = int(min(y1, y2) - 0.3 * width), int(max(y1, y2) + 0.3 * width)
        shift = int(round(shift_fraction * width))
        patch = image[top:bottom, left:right]
        out[top:bottom, left:right] = np.roll(patch, shift, axis=1)
    return out


def test_eyes_turned_towards_the_image_right_read_a_positive_yaw(analyzer, photo, evalset):
    image = evalset.webcam_frame(photo("astronaut"))
    straight = analyse(analyzer, image).gaze
    right = analyse(analyzer, _eyes_moved(analyzer, image, 0.15)).gaze
    left = analyse(analyzer, _eyes_moved(analyzer, image, -0.15)).gaze
    assert straight is not None and right is not None and left is not None
    assert right.yaw > straight.yaw + 8 and left.yaw < straight.yaw - 8, (left, straight, right)


def test_proctor_analyze_reports_the_gaze_in_degrees(analyzer, photo, evalset, tmp_path, capsys):
    import cv2

    path = tmp_path / "frame.jpg"
    cv2.imwrite(str(path), evalset.webcam_frame(photo("astronaut")))
    call_command("proctor_analyze", str(path), "--json")
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result["gaze"]) == {"yaw", "pitch"} and abs(result["gaze"]["yaw"]) < 15
    path = tmp_path / "empty.jpg"
    cv2.imwrite(str(path), evalset.webcam_frame(photo("coffee")))
    call_command("proctor_analyze", str(path), "--json")
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["gaze"] is None  # no eyes to see


def test_the_gaze_holds_still_when_the_same_photo_moves_a_little_or_is_rescaled(analyzer, photo, evalset):
    import cv2

    base = photo("astronaut")
    first = analyse(analyzer, evalset.webcam_frame(base)).gaze
    shifted = analyse(analyzer, evalset.webcam_frame(np.ascontiguousarray(np.roll(base, (7, -9), axis=(0, 1))))).gaze
    smaller = cv2.resize(base, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_AREA)
    rescaled = analyse(analyzer, evalset.webcam_frame(smaller)).gaze
    for other in (shifted, rescaled):
        assert other is not None
        assert abs(other.yaw - first.yaw) < 3 and abs(other.pitch - first.pitch) < 3, (first, shifted, rescaled)
