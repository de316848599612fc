"""The pool interface, the job and result shapes, and the work a worker does with one frame.

The same `analyze_job()` runs in a local worker process and in a Celery worker, so both back ends decode, analyse,
expire stale frames and report errors identically; only the transport differs.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import importlib
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from proctoring.vision.types import EnrolledFace, Pose

log = logging.getLogger(__name__)

OK = "ok"
REJECTED = "rejected"  # the frame itself is bad (corrupt, too large): FRAME_REJECTED
EXPIRED = "expired"  # waited longer than its deadline before a worker took it: shed, OVERLOADED
ERROR = "error"  # the server failed (model error, worker lost): ERROR, never counted against the student
TIMEOUT = "timeout"  # no answer in time (worker killed or hung): ERROR, never counted against the student

DEFAULT_ANALYZER = "proctoring.vision.pipeline:get_analyzer"
# Thumbnails for the instructor's live monitor: small enough for the channel layer and a grid of tiles.
THUMBNAIL_WIDTH = 160
THUMBNAIL_MAX_BYTES = 20_000


@dataclass(frozen=True)
class FrameJob:
    job_id: str
    session_id: int
    seq: int
    frame: bytes
    enrolled: EnrolledFace | None
    objects: frozenset[str] = frozenset({"cell phone"})
    max_bytes: int = 1_000_000
    # Epoch seconds. A frame still waiting at its deadline is stale (a newer one is on its way) and is skipped.
    deadline: float = 0.0
    want_thumbnail: bool = False
    pack: str | None = None

    def to_payload(self) -> dict[str, Any]:
        """JSON-safe form for the Celery broker: the frame as base64, the enrolled face as plain lists."""
        return {
            "job_id": self.job_id,
            "session_id": self.session_id,
            "seq": self.seq,
            "frame_b64": base64.b64encode(self.frame).decode("ascii"),
            "enrolled": asdict(self.enrolled) if self.enrolled is not None else None,
            "objects": sorted(self.objects),
            "max_bytes": self.max_bytes,
            "deadline": self.deadline,
            "want_thumbnail": self.want_thumbnail,
            "pack": self.pack,
        }

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> FrameJob:
        enrolled = data.get("enrolled")
        if enrolled is not None:
            enrolled = EnrolledFace(
                embedding=tuple(enrolled["embedding"]),
                pack=enrolled["pack"],
                model_id=enrolled["model_id"],
                neutral=Pose(**enrolled.get("neutral", {"yaw": 0.0, "pitch": 0.0, "roll": 0.0})),
            )
        return cls(
            job_id=data["job_id"],
            session_id=data["session_id"],
            seq=data["seq"],
            frame=base64.b64decode(data["frame_b64"]),
            enrolled=enrolled,
            objects=frozenset(data.get("objects", ["cell phone"])),
            max_bytes=data.get("max_bytes", 1_000_000),
            deadline=data.get("deadline", 0.0),
            want_thumbnail=data.get("want_thumbnail", False),
            pack=data.get("pack"),
        )


@dataclass(frozen=True)
class AnalysisResult:
    job_id: str
    status: str
    observation: dict[str, Any] | None = None
    reason: str | None = None
    message: str | None = None
    worker_ms: float | None = None
    thumbnail_b64: str | None = None
    worker: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnalysisResult:
        return cls(**data)


# --- Worker side -----------------------------------------------------------------------------------------------

_analyzer: Any = None
_analyzer_error: str | None = None


def worker_init(pack: str | None = None, threads: int = 1, analyzer_path: str | None = None) -> None:
    """Load the models once per worker process (ProcessPoolExecutor initializer, Celery worker_process_init).

    Thread counts are pinned before any numeric library starts: on a 2-core machine, each process spawning one
    thread per core makes the workers and the ASGI server fight for the same cores.
    """
    global _analyzer, _analyzer_error
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    try:
        import cv2

        cv2.setNumThreads(threads)
    except Exception:  # noqa: BLE001 - OpenCV is optional for the thread pinning only
        pass
    path = analyzer_path or os.environ.get("INFERENCE_ANALYZER") or DEFAULT_ANALYZER
    module, _, attr = path.partition(":")
    try:
        factory = getattr(importlib.import_module(module), attr)
        analyzer = factory(pack, threads=threads)
        if hasattr(analyzer, "load"):
            analyzer.load()
        _analyzer, _analyzer_error = analyzer, None
    except Exception as exc:  # noqa: BLE001 - reported on every job, loudly, instead of killing the pool
        log.exception("inference worker %s could not load the analyzer %s", os.getpid(), path)
        _analyzer, _analyzer_error = None, f"{type(exc).__name__}: {exc}"


def analyze_job(job: FrameJob | dict[str, Any]) -> dict[str, Any]:
    """Analyse one frame in a worker. Returns an AnalysisResult as a dict (picklable and JSON-safe).

    1. A frame past its deadline is skipped: it is stale, and analysing it would only delay the newer one.
    2. The bytes are decoded and validated (proctoring.vision.frames); a bad frame is REJECTED with its reason.
    3. The analyzer runs with the enrolled face when identity is due, and the configured objects.
    4. A small thumbnail is made when the live monitor wants one.
    """
    if isinstance(job, dict):
        job = FrameJob.from_payload(job)
    started = time.perf_counter()
    worker = f"{os.uname().nodename}:{os.getpid()}"

    def result(status: str, **kw: Any) -> dict[str, Any]:
        ms = round((time.perf_counter() - started) * 1000, 2)
        return AnalysisResult(job_id=job.job_id, status=status, worker_ms=ms, worker=worker, **kw).to_dict()

    if job.deadline and time.time() > job.deadline:
        return result(EXPIRED, reason="stale", message="The frame waited too long and was skipped.")
    from proctoring.vision.frames import FrameError, decode_frame

    try:
        image = decode_frame(job.frame, max_bytes=job.max_bytes)
    except FrameError as exc:
        return result(REJECTED, reason=exc.reason, message=exc.message)
    if _analyzer is None:
        worker_init(job.pack)
    if _analyzer is None:
        return result(ERROR, reason="models", message=_analyzer_error)
    try:
        obs = _analyzer.analyze(image, enrolled=job.enrolled, objects=job.objects)
    except Exception as exc:  # noqa: BLE001 - a server error is reported as such, never as the student's fault
        log.exception("analysis failed for session %s frame %s", job.session_id, job.seq)
        return result(ERROR, reason="analysis", message=f"{type(exc).__name__}: {exc}")
    thumbnail = make_thumbnail(image) if job.want_thumbnail else None
    return result(OK, observation=obs.to_dict(), thumbnail_b64=thumbnail, timings=dict(obs.timings_ms))


def make_thumbnail(image: Any) -> str | None:
    """A base64 JPEG about 160 px wide and under 20 KB, for the instructor's live monitor tile."""
    import cv2

    height, width = image.shape[:2]
    if width <= 0:
        return None
    small = cv2.resize(image, (THUMBNAIL_WIDTH, max(1, round(height * THUMBNAIL_WIDTH / width))))
    for quality in (70, 50, 30):
        ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok and len(buf) <= THUMBNAIL_MAX_BYTES:
            return base64.b64encode(buf.tobytes()).decode("ascii")
    return None


# --- Server side -----------------------------------------------------------------------------------------------


class InferencePool(abc.ABC):
    """Hands one frame to a worker and awaits its result without blocking the event loop.

    The consumer keeps at most one job per session in flight (latest-frame-wins lives in the consumer, which owns
    the per-session slot); the pool only transports, bounds the wait, and turns every failure into a result.
    """

    name = "abstract"

    def __init__(self, *, timeout_s: float = 5.0) -> None:
        self.timeout_s = timeout_s

    async def analyze(self, job: FrameJob, *, reply_channel: str | None = None) -> AnalysisResult:
        try:
            return await asyncio.wait_for(self._submit(job, reply_channel), self.timeout_s)
        except TimeoutError:
            self._on_timeout(job)
            return AnalysisResult(job_id=job.job_id, status=TIMEOUT, reason="timeout", message="No result in time.")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a transport failure is a server error, never the student's
            log.exception("inference pool %s failed for session %s", self.name, job.session_id)
            return AnalysisResult(job_id=job.job_id, status=ERROR, reason="pool", message=f"{type(exc).__name__}")

    @abc.abstractmethod
    async def _submit(self, job: FrameJob, reply_channel: str | None) -> AnalysisResult: ...

    def _on_timeout(self, job: FrameJob) -> None:
        """Hook: the local pool replaces a hung worker here."""
        return None

    def warm(self) -> None:
        """Start loading models if this pool owns workers; never blocks. A no-op for remote workers."""
        return None

    def deliver(self, job_id: str, result: dict[str, Any]) -> None:
        """A result that came back through the channel layer (Celery back end); a no-op for the local pool."""
        return None

    @property
    def needs_reply_channel(self) -> bool:
        return False

    def close(self) -> None:
        """Stop the workers this pool owns."""
        return None
