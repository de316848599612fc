"""ArcFace-format face embedding (112x112 aligned crop -> 512-d vector) run with onnxruntime.

Any ONNX with InsightFace's ArcFace conventions plugs in here (the default pack's faceplugin fr_feature.onnx, or an
operator's w600k_r50.onnx): 5-point similarity alignment onto the ArcFace template, RGB, (x - 127.5) / 127.5.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import FaceEmbedder, PixelFormat
from .types import Face

# InsightFace's arcface_dst: where the 5 points land in a 112x112 crop.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Pure: the 2x3 similarity (rotation, uniform scale, translation) that maps src onto dst in the least-squares
    sense (Umeyama 1991), as skimage's SimilarityTransform.estimate computes for InsightFace's norm_crop."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    rotation = u @ np.diag(d) @ vt
    var = (src_c**2).sum() / len(src)
    scale = (s * d).sum() / var if var > 0 else 1.0
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


class ArcFaceEmbedder(FaceEmbedder):
    """params: model_id, dim, threshold (cosine similarity for a match), input_mean, input_std, rgb."""

    @property
    def pixels(self) -> PixelFormat:
        return PixelFormat(
            mean=float(self.params.get("input_mean", 127.5)),
            scale=float(self.params.get("input_std", 127.5)),
            rgb=bool(self.params.get("rgb", True)),
            layout="NCHW",
        )

    def _load(self) -> Any:
        return self.open_session(self.files["model"], pixels=self.pixels)

    def preprocess(self, image: np.ndarray, face: Face) -> tuple[np.ndarray, dict[str, Any]]:
        import cv2  # lazy: OpenCV stays out of the ASGI server

        if len(face.keypoints) < 5:
            raise ValueError("ArcFace alignment needs 5 keypoints")
        matrix = similarity_transform(np.asarray(face.keypoints[:5]), ARCFACE_TEMPLATE)
        crop = cv2.warpAffine(image, matrix, (112, 112), borderValue=0.0)
        return self.to_tensor(crop, self.pixels), {}

    def infer(self, tensors: np.ndarray) -> np.ndarray:
        return self.run_session(tensors)[0]
