"""Base classes for the models of a pack, in the shape of immich's machine-learning models and Frigate's detectors.

Each model class:

1. is built from its manifest entry: ``Cls(files={"model": Path, ...}, params={...}, threads=1, session=None)``;
2. accepts an injectable ``session`` (an onnxruntime ``InferenceSession``, an OpenVINO ``CompiledModel``, or any
   object with the same ``run`` shape), so tests can hand in a fake or a session built from a synthetic model;
3. loads lazily and idempotently in ``load()``: heavy imports (onnxruntime, openvino, cv2) happen there, never at module
   import, and a second call is a no-op;
4. splits its work into ``preprocess`` (image -> tensors + meta), ``infer`` (tensors -> raw outputs, the only step
   that touches the session) and a pure ``postprocess`` (raw outputs + meta -> typed results) that is tested on
   canned arrays without any model file.

Four roles exist. A pack's manifest maps each role to a class name from ``proctoring.vision.registry``:

- ``detector``  FaceDetector:   image -> list[Face] (box, score, 5 keypoints in InsightFace order: left eye, right
  eye, nose tip, left mouth corner, right mouth corner, where "left" is the image's left)
- ``embedder``  FaceEmbedder:   image + Face -> L2-normalised float32 vector; ``model_id`` names the embedding space
- ``pose``      PoseEstimator:  image + Face -> Pose (yaw, pitch, roll in degrees; yaw > 0 when the head turns to the
  image's right, so a mirrored image flips its sign)
- ``objects``   ObjectDetector: image -> list[DetectedObject] with COCO labels ("cell phone", "person", ...)

Images are always BGR uint8 HxWx3 numpy arrays (what ``frames.decode_frame`` returns).
"""

from __future__ import annotations

import json
import logging
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from .errors import ModelPackError
from .types import DetectedObject, Face, Gaze, Pose

T = TypeVar("T")

Keypoints = tuple[tuple[float, float], ...]

log = logging.getLogger(__name__)

# OpenVINO runs a model in bf16 wherever the CPU has AVX-512 BF16, and that is not always the faster: on a 2-core
# AMD EPYC the SSD phone detector took 19 ms in bf16 and 36 ms in f32; on a 2-core Intel Xeon with the same flag it
# took 48 ms in bf16 and 32 ms in f32, and every model of the default pack was 1.5-1.8x slower in bf16 there (one
# core each, measured on the day). INFERENCE_PRECISION=auto (the default) times both on each model the first time it
# loads on a machine, keeps the faster (f32 unless bf16 is at least BF16_MARGIN faster, so a near tie never flips)
# and remembers the choice beside the model (PRECISION_FILE); f32 or bf16 forces one.
PRECISIONS = ("auto", "f32", "bf16")
BF16_MARGIN = 0.10
# What auto chose for each model file this process loaded, with the milliseconds it measured (bench/pipeline.py).
CHOSEN_PRECISION: dict[str, dict[str, Any]] = {}


@dataclass(frozen=True)
class PixelFormat:
    """What a model expects of its pixels: (x - mean) / scale, RGB or BGR, in NCHW or NHWC."""

    mean: float = 127.5
    scale: float = 127.5
    rgb: bool = True
    layout: str = "NCHW"
    input_name: str | None = None


class Model(ABC):
    """One model of a pack. Subclasses implement ``_load`` (build the session) and the pure steps of their role."""

    role: ClassVar[str] = ""
    # The files a class needs, by key in the manifest's ``models.<role>.files`` mapping.
    required_files: ClassVar[tuple[str, ...]] = ("model",)
    # Never bf16 when INFERENCE_PRECISION is auto: for models whose outputs become angles, where bf16's short
    # mantissa moves the answer by degrees however much faster it runs.
    full_precision: ClassVar[bool] = False

    def __init__(
        self,
        *,
        files: dict[str, Path] | None = None,
        params: dict[str, Any] | None = None,
        threads: int = 1,
        session: Any = None,
        name: str = "",
        version: str = "",
    ) -> None:
        self.files = {key: Path(path) for key, path in (files or {}).items()}
        self.params = dict(params or {})
        self.threads = max(1, int(threads))
        self.session = session
        self.name = name or type(self).__name__
        self.version = version
        # Milliseconds of the last bare ``infer`` call(s), so the pipeline can report inference separately from the
        # pre/post-processing around it (the overhead ratio in bench/pipeline.py).
        self.last_infer_ms = 0.0

    @property
    def loaded(self) -> bool:
        return self.session is not None

    def load(self) -> None:
        """Build the session once. Idempotent: an injected session or a second call does nothing."""
        if self.session is None:
            self.session = self._load()

    @abstractmethod
    def _load(self) -> Any:
        """Import the runtime and return a ready session. Raise ModelPackError (errors.py) on a bad file."""

    def open_session(
        self, path: Path, *, reshape: dict[str, Any] | None = None, pixels: PixelFormat | None = None
    ) -> Any:
        """A session for ``path`` on the runtime the manifest picks (params.runtime), measured per model:
        "onnxruntime" (default) or "openvino".

        With ``pixels``, an OpenVINO model takes the BGR uint8 image as it is (1, H, W, 3) and converts type, colour
        order, layout and normalisation inside the compiled graph (its PrePostProcessor), which is cheaper than
        doing it in numpy per frame; ``to_tensor`` then hands the image straight through.
        """
        if self.params.get("runtime", "onnxruntime") == "openvino":
            self.pixels_in_graph = pixels is not None
            return openvino_compiled(
                path, threads=self.threads, reshape=reshape, pixels=pixels, full_precision=self.full_precision
            )
        self.pixels_in_graph = False
        return onnx_session(path, threads=self.threads)

    def to_tensor(self, image: np.ndarray, pixels: PixelFormat) -> np.ndarray:
        """BGR uint8 HxWx3 -> the model's input tensor (or the image itself when the graph converts it)."""
        if getattr(self, "pixels_in_graph", False):
            return image[None]
        import cv2  # lazy: OpenCV stays out of the ASGI server

        if pixels.layout == "NCHW":
            blob: np.ndarray = cv2.dnn.blobFromImage(
                image,
                1.0 / pixels.scale,
                None,
                (pixels.mean,) * 3,
                swapRB=pixels.rgb,  # type: ignore[call-overload]
            )
            return blob
        source = cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if pixels.rgb else image
        return ((source.astype(np.float32) - pixels.mean) * (1.0 / pixels.scale))[None]

    def run_session(self, tensor: np.ndarray, session: Any = None) -> list[np.ndarray]:
        """One input tensor -> the list of outputs, in the model's output order, whichever runtime holds it.
        `session`: another of this model's sessions (Face Mesh's iris model) instead of its main one."""
        session = session if session is not None else self.session
        if hasattr(session, "get_inputs"):  # onnxruntime.InferenceSession (or a fake with its shape)
            outputs: list[np.ndarray] = session.run(None, {session.get_inputs()[0].name: tensor})
            return outputs
        result = session(tensor)  # openvino.CompiledModel
        return [np.asarray(result[out]) for out in session.outputs]

    def _timed(self, fn: Callable[..., T], *args: Any) -> T:
        start = time.perf_counter()
        out = fn(*args)
        self.last_infer_ms += (time.perf_counter() - start) * 1000.0
        return out

    def describe(self) -> str:
        """A short model version string for observations and evidence: ``name@version``."""
        return f"{self.name}@{self.version}" if self.version else self.name


class FaceDetector(Model):
    role = "detector"

    def detect(self, image: np.ndarray) -> list[Face]:
        self.load()
        self.last_infer_ms = 0.0
        tensors, meta = self.preprocess(image)
        outputs = self._timed(self.infer, tensors)
        return self.postprocess(outputs, meta)

    @abstractmethod
    def preprocess(self, image: np.ndarray) -> tuple[Any, dict[str, Any]]: ...

    @abstractmethod
    def infer(self, tensors: Any) -> Any: ...

    @abstractmethod
    def postprocess(self, outputs: Any, meta: dict[str, Any]) -> list[Face]:
        """Pure: raw outputs + meta (scale, offsets, image size) -> faces in image pixels, best first."""


class FaceEmbedder(Model):
    role = "embedder"

    @property
    def model_id(self) -> str:
        """The embedding space. Two embeddings compare only when their model ids (and packs) are equal."""
        return str(self.params.get("model_id") or self.describe())

    @property
    def dim(self) -> int:
        return int(self.params.get("dim", 512))

    def embed(self, image: np.ndarray, face: Face) -> np.ndarray:
        self.load()
        self.last_infer_ms = 0.0
        tensors, meta = self.preprocess(image, face)
        outputs = self._timed(self.infer, tensors)
        return self.postprocess(outputs, meta)

    @abstractmethod
    def preprocess(self, image: np.ndarray, face: Face) -> tuple[Any, dict[str, Any]]: ...

    @abstractmethod
    def infer(self, tensors: Any) -> Any: ...

    def postprocess(self, outputs: Any, meta: dict[str, Any]) -> np.ndarray:
        """Pure: the raw vector -> float32, L2-normalised (a zero vector stays zero rather than dividing by 0)."""
        return l2_normalise(np.asarray(outputs, dtype=np.float32).reshape(-1))


class PoseEstimator(Model):
    role = "pose"

    def estimate(self, image: np.ndarray, face: Face) -> Pose | None:
        return self.estimate_with_keypoints(image, face)[0]

    def estimate_with_gaze(self, image: np.ndarray, face: Face) -> tuple[Pose | None, Keypoints | None, Gaze | None]:
        """Pose, refined keypoints and the eyes' gaze (None when this estimator cannot tell or sees no eyes)."""
        pose, keypoints = self.estimate_with_keypoints(image, face)
        return pose, keypoints, None

    def estimate_with_keypoints(self, image: np.ndarray, face: Face) -> tuple[Pose | None, Keypoints | None]:
        """Pose (None when the model sees no face in the crop), plus refined 5-point keypoints when the estimator
        computes landmarks anyway (Face Mesh does): the pipeline then aligns the embedding crop on them instead of
        the detector's coarser points."""
        self.load()
        self.last_infer_ms = 0.0
        tensors, meta = self.preprocess(image, face)
        outputs = self._timed(self.infer, tensors)
        return self.postprocess(outputs, meta)

    @abstractmethod
    def preprocess(self, image: np.ndarray, face: Face) -> tuple[Any, dict[str, Any]]: ...

    @abstractmethod
    def infer(self, tensors: Any) -> Any: ...

    @abstractmethod
    def postprocess(self, outputs: Any, meta: dict[str, Any]) -> tuple[Pose | None, Keypoints | None]: ...


class ObjectDetector(Model):
    role = "objects"
    # Whether the last frame's outputs were decided by a full-precision recheck (needs_recheck).
    last_rechecked: bool = False

    def detect(self, image: np.ndarray, *, labels: frozenset[str] | None = None) -> list[DetectedObject]:
        """Objects whose label is in ``labels`` (all COCO labels when None), best first."""
        self.load()
        self.last_infer_ms = 0.0
        self.last_rechecked = False
        tensors, meta = self.preprocess(image)
        outputs = self._timed(self.infer, tensors)
        rechecked = self._timed(self.recheck, tensors, outputs, labels)
        self.last_rechecked = rechecked is not None
        if rechecked is not None:
            outputs = rechecked
        # Post-processing may skip labels nobody asked for (the SSD decodes only those columns).
        found = self.postprocess(outputs, {**meta, "labels": labels})
        return [o for o in found if labels is None or o.label in labels]

    @abstractmethod
    def preprocess(self, image: np.ndarray) -> tuple[Any, dict[str, Any]]: ...

    @abstractmethod
    def infer(self, tensors: Any) -> Any: ...

    @abstractmethod
    def postprocess(self, outputs: Any, meta: dict[str, Any]) -> list[DetectedObject]: ...

    def recheck(self, tensors: Any, outputs: Any, labels: frozenset[str] | None) -> Any:
        """The outputs of a full-precision run of the frame when those of the fast, reduced-precision run are too
        close to a threshold to decide on (the SSD's, proctoring.vision.ssd), else None: keep them."""
        return None


def l2_normalise(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def onnx_session(path: Path, *, threads: int) -> Any:
    """An onnxruntime session with explicit threads and spinning off.

    Several sessions share 1-2 cores in a worker: letting each spin or spawn one thread per core made one pipeline
    2x slower (MODELS.md). inter_op is 1 because our graphs are sequential.
    """
    import onnxruntime as ort  # lazy: a runtime loads with its first model

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    # Denormal floats cost 4x in the embedder under OpenVINO; flush them here too.
    opts.add_session_config_entry("session.set_denormal_as_zero", "1")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise ModelPackError(f"cannot load model file {path}: {exc}") from exc


def openvino_compiled(
    path: Path,
    *,
    threads: int,
    reshape: dict[str, Any] | None = None,
    pixels: PixelFormat | None = None,
    full_precision: bool = False,
) -> Any:
    """An OpenVINO compiled model (IR, ONNX or TFLite) with INFERENCE_NUM_THREADS explicit, for the same reason,
    denormals flushed to zero, and optionally the pixel conversion built into the graph (see Model.open_session).
    `full_precision`: f32 unless INFERENCE_PRECISION forces bf16 (Model.full_precision)."""
    compiled, _ = _openvino_compiled(path, threads=threads, reshape=reshape, pixels=pixels,
                                     full_precision=full_precision, twin=False)  # fmt: skip
    return compiled


def openvino_compiled_with_f32_twin(
    path: Path, *, threads: int, reshape: dict[str, Any] | None = None, pixels: PixelFormat | None = None
) -> tuple[Any, Any | None]:
    """openvino_compiled's model and, where that runs in bf16, the same graph compiled in f32 (else None), for a
    model that re-decides its close calls in f32 (proctoring.vision.ssd). Both come from one read of the file and
    share its constants: for the SSD 270-280 MB together against 333 MB compiled apart (177 MB for bf16 alone, 209 MB
    for f32 alone), the runtime included."""
    return _openvino_compiled(path, threads=threads, reshape=reshape, pixels=pixels, full_precision=False, twin=True)


def _openvino_compiled(
    path: Path,
    *,
    threads: int,
    reshape: dict[str, Any] | None,
    pixels: PixelFormat | None,
    full_precision: bool,
    twin: bool,
) -> tuple[Any, Any | None]:
    import openvino as ov  # lazy: a runtime loads with its first model

    precision = os.environ.get("INFERENCE_PRECISION", "auto")
    if precision not in PRECISIONS:
        raise ModelPackError(f"INFERENCE_PRECISION must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    try:
        core = ov.Core()
        model = core.read_model(str(path))
        if reshape:
            model.reshape(reshape)
        if pixels is not None:
            from openvino.preprocess import ColorFormat, PrePostProcessor  # lazy: a runtime loads with its first model

            ppp = PrePostProcessor(model)
            port = ppp.input(pixels.input_name) if pixels.input_name else ppp.input()
            port.tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(ColorFormat.BGR)
            port.model().set_layout(ov.Layout(pixels.layout))
            steps = port.preprocess().convert_element_type(ov.Type.f32)
            if pixels.rgb:
                steps.convert_color(ColorFormat.RGB)
            steps.mean(pixels.mean).scale(pixels.scale)
            model = ppp.build()
        config = {
            "INFERENCE_NUM_THREADS": max(1, threads),
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
            # OpenVINO pins its inference thread to a core by default, and every process picks the same first
            # core: two worker processes on 2 cores ran on one core, each at half speed (14.4 ms a frame alone,
            # 28.9 ms each side by side; 14.4 ms each without pinning). Let the OS place the workers (issue 8).
            "ENABLE_CPU_PINNING": False,
            # Flush denormal floats to zero. The ArcFace embedder's activations go denormal: 14 ms per face
            # without this, 3.6 ms with it, and the same embedding to within rounding (measured on one core).
            "CPU_DENORMALS_OPTIMIZATION": True,
        }

        def compiled_in(hint: str | None) -> Any:
            """The model compiled with this precision hint (None: the CPU's own choice)."""
            return core.compile_model(model, "CPU", {**config, "INFERENCE_PRECISION_HINT": hint} if hint else config)

        def with_twin(compiled: Any, f32: Any = None) -> tuple[Any, Any | None]:
            if not twin or not runs_in_bf16(compiled):
                return compiled, None
            return compiled, f32 if f32 is not None else compiled_in("f32")

        if precision != "auto":
            return with_twin(compiled_in(precision))
        if full_precision:
            CHOSEN_PRECISION[Path(path).name] = {"precision": "f32", "full_precision": True}
            return with_twin(compiled_in("f32"))
        known = _remembered_precision(Path(path), core, threads)
        if known is not None:
            CHOSEN_PRECISION[Path(path).name] = {**known, "remembered": True}
            return with_twin(compiled_in(known["precision"]))
        native = compiled_in(None)
        if native.get_property("INFERENCE_PRECISION_HINT") != ov.Type.bf16:
            return native, None  # no bf16 on this CPU: nothing to choose
        f32 = compiled_in("f32")
        times = {"bf16": _median_infer_ms(native), "f32": _median_infer_ms(f32)}
        chosen = choose_precision(times)
        CHOSEN_PRECISION[Path(path).name] = {"precision": chosen, "ms": times}
        _remember_precision(Path(path), core, threads, {"precision": chosen, "ms": times})
        log.info("openvino: %s in %s (bf16 %.1f ms, f32 %.1f ms)", Path(path).name, chosen, times["bf16"], times["f32"])
        return with_twin(native, f32) if chosen == "bf16" else (f32, None)
    except Exception as exc:
        raise ModelPackError(f"cannot load model file {path}: {exc}") from exc


def runs_in_bf16(compiled: Any) -> bool:
    """Whether an OpenVINO compiled model computes in bf16 (auto chose it, or INFERENCE_PRECISION forced it)."""
    import openvino as ov  # lazy: a runtime loads with its first model

    return bool(compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.bf16)


# What auto measured, kept beside the model files per CPU, OpenVINO version and thread count: the next worker to
# load the model compiles it once, in the precision measured faster (measuring compiles both, and a worker that did
# kept about 65 MB more: OpenVINO holds on to the losing precision's kernels).
PRECISION_FILE = "precision.json"


def _precision_key(core: Any, threads: int) -> str:
    import openvino as ov  # lazy: a runtime loads with its first model

    return f"{core.get_property('CPU', 'FULL_DEVICE_NAME')}|openvino {ov.get_version()}|threads {threads}"


def _remembered_precision(path: Path, core: Any, threads: int) -> dict[str, Any] | None:
    try:
        known = json.loads((path.parent / PRECISION_FILE).read_text())
    except (OSError, ValueError):
        return None
    entry = known.get(_precision_key(core, threads), {}).get(path.name)
    return entry if isinstance(entry, dict) and entry.get("precision") in ("f32", "bf16") else None


def _remember_precision(path: Path, core: Any, threads: int, entry: dict[str, Any]) -> None:
    """Merge `entry` into the pack's precision file (atomic replace; a lost race only means measuring again)."""
    target = path.parent / PRECISION_FILE
    try:
        known = json.loads(target.read_text()) if target.exists() else {}
    except (OSError, ValueError):
        known = {}
    known.setdefault(_precision_key(core, threads), {})[path.name] = entry
    try:
        temporary = target.with_name(f".{PRECISION_FILE}.{os.getpid()}")
        temporary.write_text(json.dumps(known, indent=1, sort_keys=True) + "\n")
        os.replace(temporary, target)
    except OSError:
        log.warning("openvino: could not remember the precision of %s in %s", path.name, target, exc_info=True)


def choose_precision(ms: dict[str, float]) -> str:
    """f32, unless bf16 measured at least BF16_MARGIN faster."""
    return "bf16" if ms["bf16"] < ms["f32"] * (1 - BF16_MARGIN) else "f32"


def _median_infer_ms(compiled: Any, runs: int = 5) -> float:
    """Median milliseconds of one inference on a fixed random input, after two warm-up runs."""
    rng = np.random.default_rng(0)
    inputs = {}
    for port in compiled.inputs:
        shape = [max(1, d.get_length()) if d.is_static else 1 for d in port.get_partial_shape()]
        dtype = port.get_element_type().to_dtype()
        if np.issubdtype(dtype, np.floating):
            inputs[port] = rng.random(shape, dtype=np.float32).astype(dtype)
        else:
            inputs[port] = rng.integers(0, 255, shape).astype(dtype)
    request = compiled.create_infer_request()
    for _ in range(2):
        request.infer(inputs)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        request.infer(inputs)
        times.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times))
