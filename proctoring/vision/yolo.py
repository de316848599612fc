"""The YOLO pack's object detector: YOLOv8 / YOLO11 COCO exported to ONNX, run by onnxruntime (or OpenVINO on request;
no torch in workers).

The pieces, in the order a frame meets them:

1. ``letterbox``: resize keeping the aspect ratio, then pad with grey 114 to the model's input size, centred, exactly
   as ultralytics' ``LetterBox(auto=False)`` does (same rounding), so boxes land where ultralytics puts them.
2. the ONNX graph: output ``(1, 4 + nc, anchors)``, e.g. ``(1, 84, 8400)`` at 640x640. Rows 0-3 are the box centre
   and size (cx, cy, w, h) in letterboxed pixels; rows 4.. are the class scores, already through a sigmoid. There is
   no objectness row (YOLOv5 had one; v8 and 11 do not).
3. ``decode_yolo`` (pure): best class per anchor, keep scores strictly above the threshold, class-aware NMS, then undo
   the letterbox. Ultralytics' own ONNX Runtime example divides y by a factor built from the width twice; here each
   axis is divided by its own gain (the rounded resized size over the original size), as ``scale_boxes`` does.

Exporting a ``.pt`` needs ultralytics and torch, which live in their own venv (``make yolo-venv``, see
requirements-yolo.txt): ``export_onnx`` runs the export there in a subprocess. Models exported end-to-end
(``(1, max_det, 6)`` rows of x1, y1, x2, y2, score, class, as YOLO26 does) are decoded too, without NMS.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .base import ObjectDetector, onnx_session, openvino_compiled
from .coco import COCO80
from .errors import ModelPackError
from .types import DetectedObject

PAD_VALUE = 114
# Ultralytics' defaults for predict(): conf 0.25, iou 0.7, max_det 300. Our phone check uses its own threshold from
# the manifest; these are only the fallbacks.
DEFAULT_CONF = 0.25
DEFAULT_IOU = 0.7
DEFAULT_MAX_DET = 300
# Offset per class id that separates classes in one NMS pass (ultralytics' max_wh): boxes of different classes then
# never overlap, so one greedy pass is class-aware.
CLASS_OFFSET = 7680.0


@dataclass(frozen=True)
class Letterbox:
    """How an image was fitted into the model input: the inverse maps letterboxed pixels back to the image."""

    gain_x: float  # resized width / original width
    gain_y: float  # resized height / original height
    pad_x: int  # columns of padding on the left
    pad_y: int  # rows of padding on top
    width: int  # original image size
    height: int


def letterbox(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """Resize ``image`` (HxWx3) into ``size`` = (height, width) keeping its aspect ratio, padding with grey 114.

    The rounding copies ultralytics' ``LetterBox(auto=False, center=True)``: the same pixels go into the network, so
    the same boxes come out.
    """
    import cv2  # lazy: OpenCV stays out of the ASGI server

    height, width = image.shape[:2]
    target_h, target_w = size
    ratio = min(target_h / height, target_w / width)
    new_w, new_h = max(round(width * ratio), 1), max(round(height * ratio), 1)
    dw, dh = (target_w - new_w) / 2, (target_h - new_h) / 2
    if (width, height) != (new_w, new_h):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    padded = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
    return padded, Letterbox(new_w / width, new_h / height, left, top, width, height)


def to_tensor(letterboxed: np.ndarray) -> np.ndarray:
    """BGR HxWx3 uint8 -> RGB 1x3xHxW float32 in [0, 1], the input ultralytics exports expect."""
    rgb = letterboxed[:, :, ::-1].transpose(2, 0, 1)
    return np.ascontiguousarray(rgb, dtype=np.float32)[None] / np.float32(255.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression, as ``torchvision.ops.nms``: indices kept, best score first. A box goes when
    its IoU with a kept box is strictly above the threshold. Boxes are x1, y1, x2, y2."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1).clip(0) * (y2 - y1).clip(0)
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        inter_w = (np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest])).clip(0)
        inter_h = (np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest])).clip(0)
        inter = inter_w * inter_h
        iou = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


@dataclass(frozen=True)
class Detections:
    """Decoded detections in original-image pixels, best first: boxes (N, 4) x1 y1 x2 y2, scores (N,), classes (N,)."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


def decode_yolo(
    output: np.ndarray,
    fit: Letterbox,
    *,
    conf_threshold: float = DEFAULT_CONF,
    iou_threshold: float = DEFAULT_IOU,
    max_det: int = DEFAULT_MAX_DET,
    num_classes: int | None = None,
) -> Detections:
    """Pure: a YOLO ONNX output and the letterbox it saw -> detections in the original image.

    ``output`` is ``(1, 4 + nc, anchors)`` (raw head) or ``(1, n, 6)`` (end-to-end export with NMS inside). Bad shapes
    raise ValueError with the shape found.
    """
    out = np.asarray(output, dtype=np.float32)
    if out.ndim == 3 and out.shape[0] == 1:
        out = out[0]
    if out.ndim != 2:
        raise ValueError(f"YOLO output must be (1, 4+classes, anchors) or (1, n, 6), got {np.shape(output)}")

    if out.shape[1] == 6 and (num_classes is None or out.shape[0] != 4 + num_classes):
        # End-to-end export: rows of x1, y1, x2, y2, score, class, already suppressed and sorted.
        rows = out[out[:, 4] > conf_threshold][:max_det]
        boxes, scores, classes = rows[:, :4].copy(), rows[:, 4], rows[:, 5].astype(np.int64)
    else:
        nc = num_classes if num_classes is not None else out.shape[0] - 4
        if nc < 1 or out.shape[0] != 4 + nc:
            raise ValueError(f"YOLO output has {out.shape[0]} rows per anchor, expected 4 + {nc} classes")
        class_scores = out[4 : 4 + nc]
        classes = class_scores.argmax(axis=0)
        scores = class_scores[classes, np.arange(class_scores.shape[1])]
        keep = scores > conf_threshold
        cx, cy, w, h = out[0, keep], out[1, keep], out[2, keep], out[3, keep]
        scores, classes = scores[keep], classes[keep].astype(np.int64)
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        # Ultralytics sorts and caps the candidates at 30000 before NMS; with 8400 anchors the cap never bites.
        kept = nms(boxes + (classes * CLASS_OFFSET)[:, None], scores, iou_threshold)[:max_det]
        boxes, scores, classes = boxes[kept], scores[kept], classes[kept]

    # Undo the letterbox: remove the padding, then divide each axis by its own gain.
    boxes = boxes.astype(np.float64)
    boxes[:, [0, 2]] = ((boxes[:, [0, 2]] - fit.pad_x) / fit.gain_x).clip(0, fit.width)
    boxes[:, [1, 3]] = ((boxes[:, [1, 3]] - fit.pad_y) / fit.gain_y).clip(0, fit.height)
    return Detections(boxes=boxes, scores=scores.astype(np.float64), classes=classes)


class YoloOnnxDetector(ObjectDetector):
    """ObjectDetector over a YOLOv8/YOLO11 ONNX export.

    params (all optional): ``conf_threshold`` (0.25), ``iou_threshold`` (0.7), ``max_det`` (300), ``thresholds``
    (per-label minimum scores applied after NMS), ``labels`` (the class names in model order; COCO's 80 by default,
    so class 67 is "cell phone").
    """

    required_files = ("model",)

    def _load(self) -> Any:
        # params.runtime "openvino" runs the same ONNX about twice as fast (48 against 91 ms a frame for YOLOv8n on
        # one core, MODELS.md). onnxruntime stays the default until OpenVINO's numbers are checked against
        # ultralytics' predict(): on the test's random-weight model it kept 165 boxes where predict() kept 161.
        if self.params.get("runtime", "onnxruntime") == "openvino":
            session = openvino_compiled(self.files["model"], threads=self.threads)
        else:
            session = onnx_session(self.files["model"], threads=self.threads)
        self._check_signature(session)
        return session

    @staticmethod
    def _shapes(session: Any) -> tuple[list[int | None], list[int | None]]:
        """The first input's and first output's shapes (None for a dynamic axis), whichever runtime holds them."""
        if hasattr(session, "get_inputs"):  # onnxruntime
            inputs, outputs = session.get_inputs(), session.get_outputs()
            return (list(inputs[0].shape) if inputs else [], list(outputs[0].shape) if outputs else [])

        def dims(port: Any) -> list[int | None]:
            return [d.get_length() if d.is_static else None for d in port.get_partial_shape()]

        return (dims(session.inputs[0]) if session.inputs else [], dims(session.outputs[0]) if session.outputs else [])

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.params.get("labels") or COCO80)

    def _check_signature(self, session: Any) -> None:
        shape, out = self._shapes(session)
        if len(shape) != 4 or shape[1] != 3:
            raise ModelPackError(f"{self.files.get('model')}: YOLO input must be 1x3xHxW, found {shape}")
        rows = out[1] if len(out) == 3 else None
        if isinstance(rows, int) and rows not in (4 + len(self.labels), 6) and out[2] != 6:
            raise ModelPackError(
                f"{self.files.get('model')}: YOLO output {out} does not fit {len(self.labels)} classes "
                f"(expected (1, {4 + len(self.labels)}, anchors)); set params.labels for a custom model"
            )

    def input_size(self) -> tuple[int, int]:
        """(height, width) of the model input; a dynamic axis falls back to params.input_size or 640."""
        self.load()
        shape, _ = self._shapes(self.session)
        fallback = int(self.params.get("input_size", 640))
        height = shape[2] if isinstance(shape[2], int) else fallback
        width = shape[3] if isinstance(shape[3], int) else fallback
        return int(height), int(width)

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        padded, fit = letterbox(image, self.input_size())
        return to_tensor(padded), {"fit": fit}

    def infer(self, tensors: np.ndarray) -> np.ndarray:
        return self.run_session(tensors)[0]

    def decode(self, outputs: np.ndarray, meta: dict[str, Any]) -> Detections:
        """Pure: raw output -> arrays (what the agreement test compares with ultralytics' predict())."""
        return decode_yolo(
            outputs,
            meta["fit"],
            conf_threshold=float(self.params.get("conf_threshold", DEFAULT_CONF)),
            iou_threshold=float(self.params.get("iou_threshold", DEFAULT_IOU)),
            max_det=int(self.params.get("max_det", DEFAULT_MAX_DET)),
            num_classes=len(self.labels),
        )

    def postprocess(self, outputs: np.ndarray, meta: dict[str, Any]) -> list[DetectedObject]:
        found = self.decode(outputs, meta)
        labels = self.labels
        # Per-label thresholds (e.g. a stricter "person") apply after NMS, as the SSD detector's do.
        thresholds = {str(k): float(v) for k, v in (self.params.get("thresholds") or {}).items()}
        objects = []
        for box, score, cls in zip(found.boxes, found.scores, found.classes.tolist(), strict=True):
            label = labels[cls] if 0 <= cls < len(labels) else f"class {cls}"
            if score < thresholds.get(label, 0.0):
                continue
            objects.append(
                DetectedObject(
                    label=label, box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])), score=float(score)
                )
            )
        return objects


# --- export (.pt -> .onnx through ultralytics in its own venv) ----------------------------------------------------

EXPORT_SCRIPT = """
import json, sys
from pathlib import Path
from ultralytics import YOLO
src, out, imgsz = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
model = YOLO(src)
path = Path(model.export(format="onnx", imgsz=imgsz, dynamic=False, simplify=True, nms=False, verbose=False))
path.replace(out)
print(json.dumps({"onnx": str(out), "names": [model.names[i] for i in sorted(model.names)]}))
"""


def yolo_venv_python() -> Path:
    """The interpreter of the ultralytics venv: $YOLO_VENV (default .venv-yolo at the repository root)."""
    root = Path(__file__).resolve().parents[2]
    venv = Path(os.environ.get("YOLO_VENV", root / ".venv-yolo"))
    return venv / "bin" / "python"


def ultralytics_env(workdir: Path) -> dict[str, str]:
    """Environment for ultralytics subprocesses: offline, never pip-installing, settings kept in ``workdir``."""
    return {
        **os.environ,
        "YOLO_OFFLINE": "1",
        "YOLO_AUTOINSTALL": "false",
        "YOLO_CONFIG_DIR": str(workdir),
        "YOLO_VERBOSE": "false",
    }


def export_onnx(src: Path, out: Path, *, imgsz: int = 640, timeout: int = 600) -> Path:
    """Write ``out`` (.onnx) from ``src``: an .onnx is copied as is, a .pt is exported by ultralytics in .venv-yolo.

    Raises ModelPackError naming the fix when the venv is missing or the export fails.
    """
    src, out = Path(src), Path(out)
    if src.suffix.lower() == ".onnx":
        shutil.copyfile(src, out)
        return out
    if src.suffix.lower() != ".pt":
        raise ModelPackError(f"{src}: the YOLO pack takes an ultralytics .pt or an exported .onnx file")
    python = yolo_venv_python()
    if not python.is_file():
        raise ModelPackError(
            f"exporting {src.name} to ONNX needs ultralytics in {python.parent.parent}: run `make yolo-venv` "
            "(or export it elsewhere with `yolo export model=FILE.pt format=onnx` and install the .onnx)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        local = work / src.name  # ultralytics writes the .onnx beside its input; keep that out of the operator's dir
        shutil.copyfile(src, local)
        try:
            proc = subprocess.run(
                [str(python), "-c", EXPORT_SCRIPT, str(local), str(out), str(imgsz)],
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=work,
                env=ultralytics_env(work),
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ModelPackError(f"ultralytics export of {src} failed: {exc}") from exc
    if proc.returncode != 0 or not out.is_file():
        tail = " / ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise ModelPackError(f"ultralytics export of {src} failed (exit {proc.returncode}): {tail}")
    names = json.loads(proc.stdout.strip().splitlines()[-1]).get("names", [])
    # A model built from yolov8n.yaml (the tests) names its 80 classes "0".."79"; a trained one names them.
    placeholder = all(str(n).isdigit() for n in names)
    if names and (len(names) != len(COCO80) or (tuple(names) != COCO80 and not placeholder)):
        raise ModelPackError(
            f"{src} was trained on other classes than COCO's 80 ({len(names)} classes); the YOLO pack expects a COCO "
            "model such as yolov8n.pt or yolo11n.pt"
        )
    return out


def convert_for_pack(src: Path, out: Path, spec: dict[str, Any], progress: Any = print) -> list[Path]:
    """The pack installer's conversion hook (``"convert": {"kind": "plugin", "function": "...:convert_for_pack"}``)."""
    if Path(src).suffix.lower() == ".pt":
        progress("exporting .pt -> ONNX with ultralytics in .venv-yolo (a few seconds)")
    export_onnx(Path(src), Path(out), imgsz=int(spec.get("imgsz", 640)))
    return [Path(out)]
