"""MediaPipe BlazeFace face detection (short- or full-range), converted to ONNX at install time.

Post-processing follows MediaPipe's TensorsToDetections + weighted NMS: SSD anchors on a fixed grid, sigmoid scores,
box and 6 keypoints regressed relative to each anchor, then blending of overlapping detections (more stable boxes
between frames than hard NMS).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

from .base import FaceDetector, PixelFormat
from .types import Face

# name -> (input size, strides, anchors per grid cell). From MediaPipe's SsdAnchorsCalculator options.
VARIANTS: dict[str, tuple[int, tuple[int, ...], int]] = {
    "short": (128, (8, 16, 16, 16), 2),
    "full": (192, (4,), 1),
}


# (x - 127.5) / 127.5 in RGB, NCHW
PIXELS = PixelFormat(mean=127.5, scale=127.5, rgb=True, layout="NCHW")


@cache
def anchors(variant: str) -> np.ndarray:
    """(N, 2) anchor centres in [0, 1], in the model's output order. Anchor width and height are fixed at 1."""
    size, strides, per_cell = VARIANTS[variant]
    out: list[tuple[float, float]] = []
    layer = 0
    while layer < len(strides):
        # Consecutive layers with the same stride share one grid (MediaPipe merges them).
        count = 0
        stride = strides[layer]
        while layer < len(strides) and strides[layer] == stride:
            count += per_cell
            layer += 1
        grid = int(np.ceil(size / stride))
        for y in range(grid):
            for x in range(grid):
                out.extend([((x + 0.5) / grid, (y + 0.5) / grid)] * count)
    return np.asarray(out, dtype=np.float32)


class BlazeFaceDetector(FaceDetector):
    """params: variant ("short"|"full"), score_threshold, nms_iou, min_face_px, max_faces, and for the optional
    ``fallback`` file: fallback_variant, fallback_score_threshold.

    The full-range model finds small and distant faces (group photos, a second person behind the student) but misses
    a face that fills the whole image (a tight ID-photo crop); the short-range model is the opposite. With a
    ``fallback`` file, the short-range model runs only when the main one finds nothing, which costs about 1 ms on
    frames without a face and nothing otherwise.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fallback: BlazeFaceDetector | None = None
        if "fallback" in self.files:
            self.fallback = BlazeFaceDetector(
                files={"model": self.files["fallback"]},
                params={
                    **self.params,
                    "variant": self.params.get("fallback_variant", "short"),
                    "score_threshold": self.params.get("fallback_score_threshold", 0.5),
                },
                threads=self.threads,
                name=self.name,
                version=self.version,
            )

    def _load(self) -> Any:
        if self.fallback is not None:
            self.fallback.load()
        return self.open_session(self.files["model"], pixels=PIXELS)

    def detect(self, image: np.ndarray) -> list[Face]:
        faces = super().detect(image)
        if not faces and self.fallback is not None:
            faces = self.fallback.detect(image)
            self.last_infer_ms += self.fallback.last_infer_ms
        return faces

    @property
    def variant(self) -> str:
        return str(self.params.get("variant", "short"))

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        import cv2  # lazy: OpenCV stays out of the ASGI server

        size = VARIANTS[self.variant][0]
        h, w = image.shape[:2]
        # Letterbox to a square so faces keep their shape; remember the padding to map boxes back.
        side = max(h, w)
        scale = size / side
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        resized = shrink(image, (nw, nh))
        pad_x, pad_y = (size - nw) // 2, (size - nh) // 2
        canvas = cv2.copyMakeBorder(
            resized, pad_y, size - nh - pad_y, pad_x, size - nw - pad_x, cv2.BORDER_CONSTANT, value=(0, 0, 0)
        )
        tensor = self.to_tensor(canvas, PIXELS)
        return np.ascontiguousarray(tensor), {"scale": scale, "pad": (pad_x, pad_y), "size": size, "image": (w, h)}

    def infer(self, tensors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        outputs = self.run_session(tensors)
        # Output names differ between the variants' conversions; the regressors are the one with 16 values per anchor.
        regressors = next(o for o in outputs if o.shape[-1] == 16)
        scores = next(o for o in outputs if o.shape[-1] == 1)
        return regressors, scores

    def postprocess(self, outputs: tuple[np.ndarray, np.ndarray], meta: dict[str, Any]) -> list[Face]:
        regressors, logits = outputs
        regressors = np.asarray(regressors, dtype=np.float32).reshape(-1, 16)
        logits = np.asarray(logits, dtype=np.float32).reshape(-1)
        size = meta["size"]
        anchor = anchors(self.variant)
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -50.0, 50.0)))  # float32 exp overflows past 88
        keep = scores >= float(self.params.get("score_threshold", 0.5))
        if not keep.any():
            return []
        reg, sc, anc = regressors[keep] / size, scores[keep], anchor[keep]
        cx, cy = reg[:, 0] + anc[:, 0], reg[:, 1] + anc[:, 1]
        bw, bh = reg[:, 2], reg[:, 3]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        kps = reg[:, 4:16].reshape(-1, 6, 2) + anc[:, None, :]
        # Normalised letterbox coordinates -> image pixels.
        pad_x, pad_y = meta["pad"]
        boxes = (boxes * size - np.array([pad_x, pad_y, pad_x, pad_y])) / meta["scale"]
        kps = (kps * size - np.array([pad_x, pad_y])) / meta["scale"]
        w, h = meta["image"]
        faces = []
        for idx in weighted_nms(boxes, sc, iou=float(self.params.get("nms_iou", 0.3))):
            members, weights = idx
            box = (boxes[members] * weights[:, None]).sum(0) / weights.sum()
            pts = (kps[members] * weights[:, None, None]).sum(0) / weights.sum()
            x1, y1, x2, y2 = np.clip(box, 0, [w, h, w, h])
            if min(x2 - x1, y2 - y1) < float(self.params.get("min_face_px", 0)):
                continue
            faces.append(Face(box=_round4(x1, y1, x2, y2), score=round(float(sc[members[0]]), 4), keypoints=five(pts)))
        faces.sort(key=lambda f: -f.score)
        return faces[: int(self.params.get("max_faces", 16))]


def shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Downscale with anti-aliasing, cheaply.

    Plain bilinear from a large image to 192 px aliases small faces away (it lost one of the six faces of the group
    photo t1.jpg). INTER_AREA keeps them but costs about 0.9 ms on a 640x480 frame, because 640 -> 192 is not a
    whole factor. Bilinear to twice the target, then INTER_AREA by exactly 2 (OpenCV's fast path), keeps every
    labelled face of the evaluation set and costs about 0.2 ms.
    """
    import cv2  # lazy: OpenCV stays out of the ASGI server

    width, height = size
    if image.shape[1] > 2 * width and image.shape[0] > 2 * height:
        image = cv2.resize(image, (2 * width, 2 * height), interpolation=cv2.INTER_LINEAR)
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    interpolation = cv2.INTER_AREA if image.shape[1] > width else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interpolation)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, *, iou: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """MediaPipe's WEIGHTED NMS: each cluster of overlapping boxes (IoU > iou with the best one) becomes one
    detection, the members' coordinates averaged by score. Returns (member indices best first, weights)."""
    order = np.argsort(-scores)
    clusters = []
    while order.size:
        best = order[0]
        overlap = box_iou(boxes[best], boxes[order])
        members = order[overlap > iou]
        if members.size == 0 or members[0] != best:
            members = np.concatenate([[best], members[members != best]])
        clusters.append((members, scores[members]))
        order = order[overlap <= iou]
        order = order[order != best]
    return clusters


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    overlap: np.ndarray = inter / np.maximum(area + areas - inter, 1e-9)
    return overlap


def five(points6: np.ndarray) -> tuple[tuple[float, float], ...]:
    """BlazeFace's 6 points (image-left eye, image-right eye, nose tip, mouth centre, two ear tragions) -> the
    5 points of the InsightFace convention. BlazeFace has no mouth corners, so they are placed either side of the
    mouth centre along the eye line, at the ArcFace template's ratio (mouth width = 0.83 x eye distance). The
    pipeline replaces these with Face Mesh corners when the pose model runs."""
    left_eye, right_eye, nose, mouth = (np.asarray(p, dtype=np.float64) for p in points6[:4])
    half = (right_eye - left_eye) * 0.415
    pts = (left_eye, right_eye, nose, mouth - half, mouth + half)
    return tuple((round(float(p[0]), 2), round(float(p[1]), 2)) for p in pts)


def _round4(*values: float) -> tuple[float, float, float, float]:
    return tuple(round(float(v), 2) for v in values)  # type: ignore[return-value]
