"""The InsightFace pack (buffalo_l / buffalo_s): detector, embedder and head pose adapters over ``insightface``.

THE BUFFALO WEIGHTS ARE FOR NON-COMMERCIAL RESEARCH ONLY (InsightFace's model licence). The packs' manifests say so
and `model_packs list` shows it; an institution that charges for exams needs a commercial licence from InsightFace or
the default pack.

Why adapters rather than ``FaceAnalysis``: InsightFace 2.1 builds its own onnxruntime sessions with default options
(one spinning thread per core, and the SCRFD detector adds one session per input size). Here each model gets one
session from ``Model.open_session`` (explicit threads, spinning off, MODELS.md), and insightface's own classes and
helpers run on it:

- ``InsightFaceDetector`` (SCRFD: det_10g.onnx, det_500m.onnx): insightface's resize-into-corner and blob, SCRFD's
  anchor/distance decoding (``distance2bbox``/``distance2kps``) and NMS. A test holds it equal to insightface's own
  ``SCRFD.detect`` on the same model.
- ``InsightFaceEmbedder`` (ArcFace: w600k_r50.onnx, w600k_mbf.onnx, or any ArcFace-format ONNX such as the default
  pack's fr_feature.onnx): ``ArcFaceONNX`` reads the input normalisation from the graph; ``face_align.norm_crop``
  aligns the 5 points.
- ``InsightFacePoseEstimator`` (landmark_3d_68: 1k3d68.onnx): insightface's crop, 68 3D landmarks, and its pose from
  the affine fit to the mean shape. ``face.pose`` exists only with this model (there is no "pose" task).

InsightFace's axes agree with ours (checked on its mean shape): pitch > 0 face tilts up, yaw > 0 face turns to the
image's right, roll > 0 clockwise in the image.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .base import FaceDetector, FaceEmbedder, PoseEstimator
from .errors import ModelPackError
from .types import Face, Pose

# insightface 2.1's face_align calls skimage's SimilarityTransform.estimate, deprecated in scikit-image 0.26: one
# FutureWarning per aligned face would flood a worker's log. Silenced for that module only.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"insightface\.utils\.face_align")

NON_COMMERCIAL = (
    "InsightFace buffalo_l/buffalo_s weights: non-commercial research purposes only (InsightFace model licence)"
)

# SCRFD exports by output count: (strides, anchors per cell, keypoints present). Outputs come as all score maps,
# then all box maps, then all keypoint maps, one per stride.
SCRFD_LAYOUTS: dict[int, tuple[tuple[int, ...], int, bool]] = {
    6: ((8, 16, 32), 2, False),
    9: ((8, 16, 32), 2, True),
    10: ((8, 16, 32, 64, 128), 1, False),
    15: ((8, 16, 32, 64, 128), 1, True),
}


def _model_error(message: str) -> Exception:
    return ModelPackError(message)


# --- detection --------------------------------------------------------------------------------------------------


def fit_into_corner(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """Resize keeping the ratio into the top-left corner of a black ``size`` = (width, height) canvas, exactly as
    insightface's SCRFD does (int() truncation, no centring); returns the canvas and the scale."""
    import cv2  # lazy: OpenCV stays out of the ASGI server

    width, height = size
    im_ratio = image.shape[0] / image.shape[1]
    if im_ratio > height / width:
        new_h, new_w = height, int(height / im_ratio)
    else:
        new_w, new_h = width, int(width * im_ratio)
    scale = new_h / image.shape[0]
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h))
    return canvas, scale


def nms_plus_one(dets: np.ndarray, threshold: float) -> list[int]:
    """SCRFD's NMS (areas counted with the +1 pixel convention), on rows x1, y1, x2, y2, score sorted by score."""
    x1, y1, x2, y2, scores = dets[:, 0], dets[:, 1], dets[:, 2], dets[:, 3], dets[:, 4]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[order[1:]]) - np.maximum(x1[i], x1[order[1:]]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[order[1:]]) - np.maximum(y1[i], y1[order[1:]]) + 1)
        inter = w * h
        overlap = inter / (areas[i] + areas[order[1:]] - inter)
        order = order[1:][overlap <= threshold]
    return keep


def decode_scrfd(
    outputs: list[np.ndarray],
    *,
    input_hw: tuple[int, int],
    scale: float,
    threshold: float = 0.5,
    nms_threshold: float = 0.4,
    max_faces: int = 0,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Pure: SCRFD outputs -> (dets (N, 5) x1 y1 x2 y2 score, kps (N, 5, 2) or None) in image pixels, best first."""
    from insightface.model_zoo.scrfd import distance2bbox, distance2kps  # lazy: an operator-provided pack

    layout = SCRFD_LAYOUTS.get(len(outputs))
    if layout is None:
        raise ValueError(f"SCRFD has 6, 9, 10 or 15 outputs, got {len(outputs)}")
    strides, anchors, use_kps = layout
    outs = [o[0] if o.ndim == 3 else o for o in outputs]  # batched exports carry a leading 1
    fmc = len(strides)
    scores_l, boxes_l, kps_l = [], [], []
    for idx, stride in enumerate(strides):
        height, width = input_hw[0] // stride, input_hw[1] // stride
        grid = np.mgrid[:height, :width]
        centres = np.stack([grid[1], grid[0]], axis=-1).astype(np.float32)
        centres = (centres * stride).reshape(-1, 2)
        if anchors > 1:
            centres = np.stack([centres] * anchors, axis=1).reshape(-1, 2)
        scores = outs[idx].reshape(-1)
        if scores.shape[0] != centres.shape[0]:
            raise ValueError(f"stride {stride}: {scores.shape[0]} scores for {centres.shape[0]} anchors")
        above = np.where(scores >= threshold)[0]
        scores_l.append(scores[above])
        boxes_l.append(distance2bbox(centres, outs[idx + fmc] * stride)[above])
        if use_kps:
            kps = distance2kps(centres, outs[idx + 2 * fmc] * stride)
            kps_l.append(kps.reshape(kps.shape[0], -1, 2)[above])
    scores = np.concatenate(scores_l)
    if scores.size == 0:
        return np.empty((0, 5), np.float32), (np.empty((0, 5, 2), np.float32) if use_kps else None)
    order = np.argsort(-scores, kind="stable")
    dets = np.hstack([np.vstack(boxes_l) / scale, scores[:, None]]).astype(np.float32)[order]
    kps = (np.vstack(kps_l) / scale)[order] if use_kps else None
    keep = nms_plus_one(dets, nms_threshold)
    if max_faces > 0:
        keep = keep[:max_faces]
    return dets[keep], (kps[keep] if kps is not None else None)


class InsightFaceDetector(FaceDetector):
    """SCRFD. params: input_size [width, height] (640x640), det_thresh (0.5), nms_thresh (0.4), max_faces (16)."""

    def _load(self) -> Any:
        session = self.open_session(self.files["model"])
        count = len(session.get_outputs())
        if count not in SCRFD_LAYOUTS:
            raise _model_error(f"{self.files['model']}: not an SCRFD detector ({count} outputs)")
        if not SCRFD_LAYOUTS[count][2]:
            raise _model_error(f"{self.files['model']}: this SCRFD has no keypoints; alignment needs 5 points")
        return session

    def input_wh(self) -> tuple[int, int]:
        width, height = self.params.get("input_size", (640, 640))
        return int(width), int(height)

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        import cv2  # lazy: OpenCV stays out of the ASGI server

        size = self.input_wh()
        canvas, scale = fit_into_corner(image, size)
        # insightface: RGB, (x - 127.5) / 128
        blob = cv2.dnn.blobFromImage(canvas, 1.0 / 128.0, size, (127.5, 127.5, 127.5), swapRB=True)
        return blob, {"scale": scale, "input_hw": (size[1], size[0])}

    def infer(self, tensors: np.ndarray) -> list[np.ndarray]:
        return self.run_session(tensors)

    def postprocess(self, outputs: list[np.ndarray], meta: dict[str, Any]) -> list[Face]:
        dets, kps = decode_scrfd(
            outputs,
            input_hw=meta["input_hw"],
            scale=meta["scale"],
            threshold=float(self.params.get("det_thresh", 0.5)),
            nms_threshold=float(self.params.get("nms_thresh", 0.4)),
            max_faces=int(self.params.get("max_faces", 16)),
        )
        return [
            Face(
                box=(float(d[0]), float(d[1]), float(d[2]), float(d[3])),
                score=float(d[4]),
                keypoints=tuple((float(x), float(y)) for x, y in kps[i]) if kps is not None else (),
            )
            for i, d in enumerate(dets)
        ]


# --- embedding --------------------------------------------------------------------------------------------------


class InsightFaceEmbedder(FaceEmbedder):
    """ArcFace through insightface's ``ArcFaceONNX``. params: model_id, dim (512), threshold (cosine)."""

    _arcface: Any = None

    def _load(self) -> Any:
        return self.open_session(self.files["model"])

    def arcface(self) -> Any:
        """insightface's ArcFaceONNX on our session: input size, names, and mean/std read from the graph."""
        if self._arcface is None:
            from insightface.model_zoo.arcface_onnx import ArcFaceONNX  # lazy: an operator-provided pack

            self.load()
            try:
                self._arcface = ArcFaceONNX(model_file=str(self.files["model"]), session=self.session)
            except (AssertionError, OSError, ValueError) as exc:
                raise _model_error(f"{self.files['model']}: not an ArcFace-format model ({exc!r})") from exc
        return self._arcface

    def preprocess(self, image: np.ndarray, face: Face) -> tuple[np.ndarray, dict[str, Any]]:
        import cv2  # lazy: OpenCV stays out of the ASGI server
        from insightface.utils import face_align  # lazy: an operator-provided pack

        if len(face.keypoints) < 5:
            raise ValueError("ArcFace alignment needs the detector's 5 keypoints")
        rec = self.arcface()
        crop = face_align.norm_crop(
            image, landmark=np.asarray(face.keypoints[:5], dtype=np.float32), image_size=rec.input_size[0]
        )
        mean = (rec.input_mean,) * 3
        blob = cv2.dnn.blobFromImages([crop], 1.0 / rec.input_std, rec.input_size, mean, swapRB=True)
        return blob, {}

    def infer(self, tensors: np.ndarray) -> np.ndarray:
        rec = self.arcface()
        return np.asarray(self.session.run(rec.output_names, {rec.input_name: tensors})[0])


# --- head pose --------------------------------------------------------------------------------------------------


def pose_from_landmarks(raw: np.ndarray, matrix: np.ndarray, input_size: int, mean_shape: np.ndarray) -> Pose:
    """Pure: 1k3d68's raw output (3309 values; the last 68x3 are the landmarks in [-1, 1] crop units) and the crop's
    2x3 affine -> head pose, as insightface's ``Landmark.get`` computes ``face.pose``."""
    import cv2  # lazy: OpenCV stays out of the ASGI server
    from insightface.utils import face_align, transform  # lazy: an operator-provided pack

    pred = np.asarray(raw, dtype=np.float32).reshape(-1, 3)[-68:].copy()
    half = input_size // 2
    pred[:, 0:2] = (pred[:, 0:2] + 1) * half
    pred[:, 2] *= half
    landmarks = face_align.trans_points(pred, cv2.invertAffineTransform(matrix))
    _, rotation, _ = transform.P2sRt(transform.estimate_affine_matrix_3d23d(mean_shape, landmarks))
    pitch, yaw, roll = transform.matrix2angle(rotation)
    return Pose(yaw=round(float(yaw), 2), pitch=round(float(pitch), 2), roll=round(float(roll), 2))


class InsightFacePoseEstimator(PoseEstimator):
    """Head pose from insightface's landmark_3d_68 model (1k3d68.onnx). No params."""

    _landmark: Any = None

    def _load(self) -> Any:
        return self.open_session(self.files["model"])

    def landmark(self) -> Any:
        if self._landmark is None:
            from insightface.model_zoo.landmark import Landmark  # lazy: an operator-provided pack

            self.load()
            try:
                model = Landmark(model_file=str(self.files["model"]), session=self.session)
            except (AssertionError, OSError, ValueError) as exc:
                raise _model_error(f"{self.files['model']}: not an insightface landmark model ({exc!r})") from exc
            if not model.require_pose:
                raise _model_error(f"{self.files['model']}: head pose needs landmark_3d_68 (1k3d68.onnx)")
            self._landmark = model
        return self._landmark

    def preprocess(self, image: np.ndarray, face: Face) -> tuple[np.ndarray, dict[str, Any]]:
        import cv2  # lazy: OpenCV stays out of the ASGI server
        from insightface.utils import face_align  # lazy: an operator-provided pack

        model = self.landmark()
        x1, y1, x2, y2 = face.box
        size = model.input_size[0]
        scale = size / (max(x2 - x1, y2 - y1) * 1.5)
        crop, matrix = face_align.transform(image, ((x1 + x2) / 2, (y1 + y2) / 2), size, scale, 0)
        mean = (model.input_mean,) * 3
        blob = cv2.dnn.blobFromImage(crop, 1.0 / model.input_std, (size, size), mean, swapRB=True)
        return blob, {"matrix": matrix, "input_size": size}

    def infer(self, tensors: np.ndarray) -> np.ndarray:
        model = self.landmark()
        return np.asarray(self.session.run(model.output_names, {model.input_name: tensors})[0][0])

    def postprocess(self, outputs: np.ndarray, meta: dict[str, Any]) -> tuple[Pose | None, None]:
        # The detector's 5 points are what ArcFace alignment was trained on: no refined keypoints from here.
        pose = pose_from_landmarks(outputs, meta["matrix"], meta["input_size"], self.landmark().mean_lmk)
        return pose, None
