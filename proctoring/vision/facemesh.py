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
from .types import Face, Pose

# Face Mesh landmark indices (MediaPipe topology). "Left/right" here are image sides for a frontal face.
OUTER_EYE_IMAGE_LEFT, OUTER_EYE_IMAGE_RIGHT = 33, 263
FOREHEAD, CHIN, NOSE_TIP = 10, 152, 1
MOUTH_IMAGE_LEFT, MOUTH_IMAGE_RIGHT = 61, 291
# Eye centres, as the mean of each eye's contour points, for the 5-point alignment of the embedder.
EYE_IMAGE_LEFT = (33, 133, 159, 145, 158, 153, 160, 144)
EYE_IMAGE_RIGHT = (263, 362, 386, 374, 385, 380, 387, 373)
# RGB in [0, 1], NCHW
PIXELS = PixelFormat(mean=0.0, scale=255.0, rgb=True, layout="NCHW")


class FaceMeshPoseEstimator(PoseEstimator):
    """params: roi_scale (1.5), presence_threshold (0.5: below it the crop holds no face and pose is unknown),
    pitch_offset (degrees added to pitch), runtime."""

    input_size = 192

    def _load(self) -> Any:
        return self.open_session(self.files["model"], pixels=PIXELS)

    def preprocess(self, image: np.ndarray, face: Face) -> tuple[np.ndarray, dict[str, Any]]:
        import cv2

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
