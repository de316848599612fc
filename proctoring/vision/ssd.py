"""SSD-MobileNet-v2 COCO (TensorFlow Object Detection model zoo) run with OpenVINO from an IR cut at install time.

The phone check dominates the time budget. Two measured steps make it cheaper:

1. OpenVINO instead of cv2.dnn: about 3x faster on one core (17.6 ms against 57.5 ms, MODELS.md).
2. The IR is cut at install (``convert_for_pack``) between the TF graph's own pre- and post-processing: its
   preprocessor runs a per-image while-loop to resize and normalise, and its postprocessor a 90-class NMS loop, which
   together cost about 20% of the run. We feed the normalised tensor ourselves and decode box encodings against the
   anchors (saved beside the IR at install) in numpy, for the requested labels only.

Outputs of the cut graph: ``concat_1`` class logits (1, 1917, 91) with column = COCO id (0 = background), and
``concat`` box encodings (1, 1917, 1, 4) as [ty, tx, th, tw] relative to anchors [ymin, xmin, ymax, xmax].
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from .base import ObjectDetector, PixelFormat, openvino_compiled, openvino_compiled_with_f32_twin
from .coco import COCO91
from .errors import ModelPackError
from .types import DetectedObject

INPUT_TENSOR = "Preprocessor/sub:0"  # after the graph's own resize loop and (x * 2/255 - 1)
IMAGE_TENSOR = "image_tensor:0"  # still a parameter after the cut: only its static shape is read
LOGITS_TENSOR = "concat_1:0"
BOXES_TENSOR = "concat:0"
ANCHORS_TENSOR = "Concatenate/concat:0"
# The graph's own preprocessing is x * 2/255 - 1 on RGB, NHWC.
PIXELS = PixelFormat(mean=127.5, scale=127.5, rgb=True, layout="NHWC", input_name=INPUT_TENSOR)
# FasterRcnnBoxCoder scale factors of the TF OD config (y, x, h, w).
BOX_SCALE = np.array([10.0, 10.0, 5.0, 5.0], dtype=np.float32)
LABEL_IDS = {label: coco_id for coco_id, label in COCO91.items()}
# Where auto puts the detector in bf16 (11 ms a frame against 37 ms in f32 on a 2-core Xeon with AMX), its scores
# move by up to 0.2 in logit, and downward near the threshold: of twelve webcam frames with a small phone held up
# beside the student, f32 scored all but one at 0.50-0.64 and bf16 put five of them under 0.5 (shifts of 0.015-0.053
# in score; confident phones and empty frames moved by under 0.01). The thresholds were set on f32 scores. A frame
# whose bf16 logits put any requested label within this band of its threshold runs again in f32, and the f32 outputs
# decide: the decisions stay f32's, at bf16's speed on every frame without a candidate near a threshold. Three times
# the largest shift measured.
RECHECK_LOGIT_BAND = 0.6
# The INT8 graph (pack default-int8, recheck against the f32 IR kept beside it) moves further: on the 24 composite
# frames of a phone held up beside the student (f32 0.50-0.64) its frame's best phone logit sat 0.53-0.85 under
# f32's, every one under the threshold, while the capacity benchmark's phone-free frames moved by under 0.5. The
# pack sets this band (`recheck_logit_band`, 1.5: 1.75 times the largest shift near a threshold), so INT8 decides
# alone only the frames whose every phone score is under 0.18 or over 0.82.


class SSDMobileNetDetector(ObjectDetector):
    """params: input_size (300), score_threshold (default for every label), thresholds ({label: score}), nms_iou
    (0.6, as the TF OD config), max_per_label."""

    required_files = ("model", "anchors")
    # The f32 twin where the detector runs in bf16 or INT8 (recheck), set as the model loads.
    exact: Any = None

    def _load(self) -> Any:
        size = int(self.params.get("input_size", 300))
        shape = [1, size, size, 3]
        self.anchors = np.load(self.files["anchors"]).astype(np.float32)
        self._dummy_image = np.zeros(shape, dtype=np.uint8)
        self.pixels_in_graph = True
        reshape = {INPUT_TENSOR: shape, IMAGE_TENSOR: shape}
        reference = self.files.get("reference")
        if reference is not None:
            # A quantised graph (default-int8) with the f32 graph it came from, for the frames near a threshold.
            self.exact = openvino_compiled(reference, threads=self.threads, reshape=reshape, pixels=PIXELS,
                                           full_precision=True)  # fmt: skip
            return openvino_compiled(self.files["model"], threads=self.threads, reshape=reshape, pixels=PIXELS)
        # The same graph in f32 for the frames near a threshold (RECHECK_LOGIT_BAND), only where this runs in bf16.
        fast, self.exact = openvino_compiled_with_f32_twin(
            self.files["model"], threads=self.threads, reshape=reshape, pixels=PIXELS
        )
        return fast

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        import cv2  # lazy: OpenCV stays out of the ASGI server

        size = int(self.params.get("input_size", 300))
        h, w = image.shape[:2]
        # The model was trained on stretched (not letterboxed) 300x300 inputs; its boxes are normalised, so they
        # map back to the frame by its own width and height.
        resized = cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)
        return self.to_tensor(resized, PIXELS), {"image": (w, h), "anchors": getattr(self, "anchors", None)}

    def infer(self, tensors: np.ndarray, session: Any = None) -> tuple[np.ndarray, np.ndarray]:
        session = session if session is not None else self.session
        result = session({INPUT_TENSOR: tensors, IMAGE_TENSOR: self._dummy_image})
        by_name = {out.get_any_name(): np.asarray(result[out]) for out in session.outputs}
        return by_name[LOGITS_TENSOR], by_name[BOXES_TENSOR]

    def recheck(
        self, tensors: np.ndarray, outputs: tuple[np.ndarray, np.ndarray], labels: frozenset[str] | None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The f32 twin's outputs when a requested label's bf16 (or INT8) logit lies within the recheck band
        (RECHECK_LOGIT_BAND, or the pack's `recheck_logit_band`) of its threshold anywhere in the frame; None when
        the detector runs in f32 already or nothing is that close."""
        if self.exact is None:
            return None
        band = float(self.params.get("recheck_logit_band", RECHECK_LOGIT_BAND))
        logits = np.asarray(outputs[0], dtype=np.float32).reshape(-1, outputs[0].shape[-1])
        for label in self._wanted(labels):
            column = logits[:, LABEL_IDS[label]]
            if np.any(np.abs(column - threshold_logit(self._threshold(label))) < band):
                return self.infer(tensors, self.exact)
        return None

    def _wanted(self, labels: frozenset[str] | None) -> list[str]:
        return [label for label in LABEL_IDS if labels is None or label in labels]

    def _threshold(self, label: str) -> float:
        return float(dict(self.params.get("thresholds", {})).get(label, self.params.get("score_threshold", 0.5)))

    def postprocess(self, outputs: tuple[np.ndarray, np.ndarray], meta: dict[str, Any]) -> list[DetectedObject]:
        """Pure: (class logits (1,N,91), box encodings (1,N,1,4)) + anchors (N,4) -> objects of the requested labels
        (meta["labels"], all when None), per-label NMS, best first."""
        logits, encodings = outputs
        logits = np.asarray(logits, dtype=np.float32).reshape(-1, logits.shape[-1])
        encodings = np.asarray(encodings, dtype=np.float32).reshape(-1, 4)
        anchors = np.asarray(meta["anchors"], dtype=np.float32)
        labels = meta.get("labels")
        iou = float(self.params.get("nms_iou", 0.6))
        limit = int(self.params.get("max_per_label", 20))
        w, h = meta["image"]
        found: list[DetectedObject] = []
        for label in self._wanted(labels):
            column = logits[:, LABEL_IDS[label]]
            # sigmoid(x) >= t  <=>  x >= logit(t): compare logits, so sigmoid runs only on the few candidates
            keep = np.nonzero(column >= threshold_logit(self._threshold(label)))[0]
            if keep.size == 0:
                continue
            scores = 1.0 / (1.0 + np.exp(-column[keep]))
            boxes = decode_boxes(encodings[keep], anchors[keep])
            for index in nms(boxes, scores, iou=iou)[:limit]:
                ymin, xmin, ymax, xmax = np.clip(boxes[index], 0.0, 1.0)
                box = (float(xmin) * w, float(ymin) * h, float(xmax) * w, float(ymax) * h)
                found.append(
                    DetectedObject(
                        label=label, box=tuple(round(v, 1) for v in box), score=round(float(scores[index]), 4)
                    )
                )
        found.sort(key=lambda o: -o.score)
        return found


def threshold_logit(threshold: float) -> float:
    """The logit whose sigmoid is `threshold`."""
    return float(np.log(threshold / (1.0 - threshold)))


def decode_boxes(encodings: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Pure: TF OD FasterRcnnBoxCoder decoding. Encodings [ty, tx, th, tw]; anchors, result [ymin, xmin, ymax, xmax]."""
    ha = anchors[:, 2] - anchors[:, 0]
    wa = anchors[:, 3] - anchors[:, 1]
    yc = anchors[:, 0] + ha / 2
    xc = anchors[:, 1] + wa / 2
    ty, tx, th, tw = (encodings / BOX_SCALE).T
    h = np.exp(th) * ha
    w = np.exp(tw) * wa
    y = ty * ha + yc
    x = tx * wa + xc
    return np.stack([y - h / 2, x - w / 2, y + h / 2, x + w / 2], axis=1)


def nms(boxes: np.ndarray, scores: np.ndarray, *, iou: float) -> list[int]:
    """Pure: greedy NMS over [ymin, xmin, ymax, xmax] boxes; indices best first."""
    order = list(np.argsort(-scores))
    keep: list[int] = []
    while order:
        best = order.pop(0)
        keep.append(int(best))
        if not order:
            break
        rest = np.asarray(order)
        y1 = np.maximum(boxes[best, 0], boxes[rest, 0])
        x1 = np.maximum(boxes[best, 1], boxes[rest, 1])
        y2 = np.minimum(boxes[best, 2], boxes[rest, 2])
        x2 = np.minimum(boxes[best, 3], boxes[rest, 3])
        inter = np.clip(y2 - y1, 0, None) * np.clip(x2 - x1, 0, None)
        area = (boxes[best, 2] - boxes[best, 0]) * (boxes[best, 3] - boxes[best, 1])
        areas = (boxes[rest, 2] - boxes[rest, 0]) * (boxes[rest, 3] - boxes[rest, 1])
        overlap = inter / np.maximum(area + areas - inter, 1e-9)
        order = [int(i) for i, o in zip(rest, overlap, strict=True) if o <= iou]
    return keep


def convert_for_pack(src: Path, out: Path, spec: dict[str, Any], progress: Any = print) -> list[Path]:
    """Install-time conversion (a pack "plugin" step): frozen TF graph -> IR cut between the graph's own pre- and
    post-processing, plus the anchors it computes, saved as ``<stem>.anchors.npy``. About 10 s, once."""
    import openvino as ov  # lazy: a runtime loads with its first model
    from openvino.frontend import FrontEndManager  # lazy: a runtime loads with its first model

    size = int(spec.get("input_size", 300))
    shape = [1, size, size, 3]
    frontend = FrontEndManager().load_by_framework("tf")

    progress("converting the frozen graph to OpenVINO IR, cut after its preprocessing loop and before its NMS")
    graph = frontend.load(str(src))
    graph.override_all_inputs([graph.get_place_by_tensor_name(INPUT_TENSOR)])
    graph.override_all_outputs(
        [graph.get_place_by_tensor_name(LOGITS_TENSOR), graph.get_place_by_tensor_name(BOXES_TENSOR)]
    )
    model = frontend.convert(graph)
    model.reshape({INPUT_TENSOR: shape, IMAGE_TENSOR: shape})
    ov.save_model(model, str(out), compress_to_fp16=False)

    progress("computing the anchors of the 300x300 grid")
    graph = frontend.load(str(src))
    graph.override_all_outputs([graph.get_place_by_tensor_name(ANCHORS_TENSOR)])
    anchors_model = frontend.convert(graph)
    anchors_model.reshape(shape)
    compiled = ov.Core().compile_model(anchors_model, "CPU")
    anchors = np.asarray(compiled(np.zeros(shape, dtype=np.uint8))[0], dtype=np.float32)
    anchors_path = out.with_name(out.stem + ".anchors.npy")
    np.save(anchors_path, anchors)
    if not spec.get("int8"):
        return [out, out.with_suffix(".bin"), anchors_path]
    # The f32 IR stays beside the INT8 one: the INT8 detector's close calls are decided by it (recheck).
    reference = out.with_name(out.stem + ".f32.xml")
    shutil.copyfile(out, reference)
    shutil.copyfile(out.with_suffix(".bin"), reference.with_suffix(".bin"))
    quantize_int8(out, progress=progress)
    return [out, out.with_suffix(".bin"), anchors_path, reference, reference.with_suffix(".bin")]


def quantize_venv_python() -> Path:
    """The interpreter of the quantisation venv: $QUANTIZE_VENV (default .venv-quantize at the repository root),
    built by `make quantize-venv` from requirements-quantize.txt."""
    root = Path(__file__).resolve().parents[2]
    return Path(os.environ.get("QUANTIZE_VENV", root / ".venv-quantize")) / "bin" / "python"


def quantize_int8(ir: Path, *, progress: Any = print) -> None:
    """Replace the FP32 IR at ``ir`` (and its .bin) with an INT8 one (NNCF post-training quantisation, calibrated on
    the evaluation photos), in the quantisation venv. The default-int8 pack: 12.5 ms an inference instead of 20.6 ms
    on one core, with phone scores lower near the threshold, which its f32 recheck decides (bench/results/int8.json,
    the pack's choice and caveats)."""
    from django.conf import settings  # read lazily, as packs.model_dir does

    python = quantize_venv_python()
    if not python.is_file():
        raise ModelPackError(
            f"quantising the phone detector needs NNCF in {python.parent.parent}: run `make quantize-venv` "
            f"(or set QUANTIZE_VENV), then install the pack again"
        )
    photos = Path(settings.DATA_DIR) / "evalset"
    images = sorted(str(p) for p in photos.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if len(images) < 5:
        raise ModelPackError(f"the calibration photos are missing in {photos}: run `python bench/evalset.py fetch`")
    progress(f"quantizing the phone detector to INT8 with NNCF on {len(images)} evaluation photos (about 30 s, once)")
    staged = ir.with_name(ir.stem + ".int8.xml")
    done = subprocess.run(
        # -I: isolated, so the script's own directory (which holds a types.py) does not shadow the standard library.
        [str(python), "-I", str(Path(__file__).with_name("ssd_int8.py")), str(ir), str(staged), *images],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        tail = " / ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise ModelPackError(f"INT8 quantisation failed (exit {done.returncode}): {tail}")
    staged.replace(ir)
    staged.with_suffix(".bin").replace(ir.with_suffix(".bin"))
