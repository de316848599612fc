"""The pool interface, the job and result shapes, and the work a worker does with one frame.

The same `analyze_job()` runs in a local worker process and in a Celery worker, so both back ends decode, analyse,
expire stale frames and report errors identically; only the transport differs.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import collections
import contextlib
import importlib
import io
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from proctoring.vision.change import CHANGE_THRESHOLD, change, signature
from proctoring.vision.frames import FrameError, decode_frame, fit_within
from proctoring.vision.types import DetectedObject, EnrolledFace, Face, Gaze, Identity, Pose

log = logging.getLogger(__name__)

OK = "ok"
REJECTED = "rejected"  # the frame itself is bad (corrupt, too large): FRAME_REJECTED
EXPIRED = "expired"  # waited longer than its deadline before a worker took it: shed, OVERLOADED
ERROR = "error"  # the server failed (model error, worker lost): ERROR, never counted against the student
TIMEOUT = "timeout"  # no answer in time (worker killed or hung): ERROR, never counted against the student

DEFAULT_ANALYZER = "proctoring.vision.pipeline:get_analyzer"
# How many recent frames the service time is averaged over (push-back and the local pool's wait bound).
SERVICE_WINDOW = 256
# A paced room goes back to the exam's own interval when demand is at most this share of what the workers take at
# TARGET_UTILISATION (and nothing waits): below 1.0, so that a room near capacity is not paced and released in turn.
RELEASE_BELOW = 0.9
# Thumbnails for the instructor's live monitor: small enough for the channel layer and a grid of tiles.
THUMBNAIL_WIDTH = 160
THUMBNAIL_MAX_BYTES = 20_000
# JPEG qualities tried in turn until a thumbnail fits THUMBNAIL_MAX_BYTES (workers and server alike).
THUMBNAIL_QUALITIES = (70, 50, 30)


@dataclass(frozen=True)
class ObjectsMemory:
    """A session's last measured object-detector result, so that a worker may re-use it for a frame that has not
    changed since (the skip rule in `analyze_job`). The consumer keeps it; workers stay stateless.

    `identity` is that frame's identity check when it was a match: an unchanged frame shows the same person, so the
    embedding is skipped too. A mismatch or an unchecked frame is never re-used (identity then runs every frame)."""

    seq: int  # the frame the detector actually ran on
    signature: bytes  # proctoring.vision.change.signature of that frame
    objects: tuple[dict[str, Any], ...] = ()  # as in Observation.to_dict()["objects"]
    reuses_left: int = 0
    identity: dict[str, Any] | None = None  # as in Observation.to_dict()["identity"], only when it matched
    # The faces the face detector found on that frame, as in Observation.to_dict()["faces"] (None: not kept, and the
    # detector runs). An unchanged frame shows the same faces: the detector is skipped with the phone detector.
    faces: tuple[dict[str, Any], ...] | None = None

    def to_payload(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "signature_b64": base64.b64encode(self.signature).decode("ascii"),
            "objects": list(self.objects),
            "reuses_left": self.reuses_left,
            "identity": self.identity,
            "faces": list(self.faces) if self.faces is not None else None,
        }

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> ObjectsMemory:
        return cls(
            seq=int(data["seq"]),
            signature=base64.b64decode(data["signature_b64"]),
            objects=tuple(data.get("objects", ())),
            reuses_left=int(data.get("reuses_left", 0)),
            identity=data.get("identity"),
            faces=tuple(data["faces"]) if data.get("faces") is not None else None,
        )


def objects_memory_after(
    memory: ObjectsMemory | None, *, seq: int, result: AnalysisResult, limit: int, phase: int = 0
) -> ObjectsMemory | None:
    """The session's object memory after an analysed frame: a fresh measurement is re-usable for up to `limit`
    following frames; a frame that re-used one spends one re-use. The comparison stays with the frame the detector
    measured, so a slow drift still adds up to a change. `limit` 0 turns the skip rule off.

    `phase` (the consumer passes the session id) shortens a connection's first measurement to `limit - phase %
    (limit + 1)` re-uses. Otherwise a room that connects together runs the detector on the same frames (every
    student's first, fourth, seventh...) and idles in between: at 150 students on 2 cores, 2.4 cores' worth of frames
    every third interval, and frames shed for the first 30 s. Shorter only, so the bound never loosens."""
    if limit <= 0 or result.status != OK or result.signature_b64 is None:
        return None
    if result.objects_from_seq is None:
        observation = result.observation or {}
        identity = observation.get("identity")
        return ObjectsMemory(
            seq=seq,
            signature=base64.b64decode(result.signature_b64),
            objects=tuple(observation.get("objects", ())),
            reuses_left=limit if memory is not None else limit - phase % (limit + 1),
            identity=identity if identity and identity.get("match") else None,
            faces=tuple(observation.get("faces", ())),
        )
    if memory is None:
        return None
    return replace(memory, reuses_left=memory.reuses_left - 1)


@dataclass(frozen=True)
class FrameJob:
    job_id: str
    session_id: int
    seq: int
    frame: bytes
    # The student's enrolment: its neutral pose and gaze make every frame's pose and gaze relative (in the
    # analyzer, once), and its embedding is compared when `identity` is due.
    enrolled: EnrolledFace | None
    # Whether identity is due on this frame (the session's cadence). When it is not, the embedding is skipped.
    identity: bool = True
    objects: frozenset[str] = frozenset({"cell phone"})
    max_bytes: int = 1_000_000
    # Epoch seconds. A frame still waiting at its deadline is stale (a newer one is on its way) and is skipped.
    deadline: float = 0.0
    want_thumbnail: bool = False
    pack: str | None = None
    # When the session last got a result, or connected if it has had none (epoch seconds): under overload the pool
    # serves the longest-waiting session first and sheds the most recently served one, so no student starves.
    priority: float = 0.0
    objects_memory: ObjectsMemory | None = None

    def to_payload(self) -> dict[str, Any]:
        """JSON-safe form for the Celery broker: the frame as base64, the enrolled face as plain lists."""
        return {
            "job_id": self.job_id,
            "session_id": self.session_id,
            "seq": self.seq,
            "frame_b64": base64.b64encode(self.frame).decode("ascii"),
            "enrolled": self._enrolled_payload(),
            "identity": self.identity,
            "objects": sorted(self.objects),
            "max_bytes": self.max_bytes,
            "deadline": self.deadline,
            "want_thumbnail": self.want_thumbnail,
            "pack": self.pack,
            "priority": self.priority,
            "objects_memory": self.objects_memory.to_payload() if self.objects_memory is not None else None,
        }

    def _enrolled_payload(self) -> dict[str, Any] | None:
        if self.enrolled is None:
            return None
        enrolled = asdict(self.enrolled)
        if not self.identity:
            # Only the neutral pose is used when identity is not due: 512 numbers less on the broker.
            enrolled["embedding"] = []
        return enrolled

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> FrameJob:
        enrolled = data.get("enrolled")
        if enrolled is not None:
            enrolled = EnrolledFace(
                embedding=tuple(enrolled["embedding"]),
                pack=enrolled["pack"],
                model_id=enrolled["model_id"],
                neutral=Pose(**enrolled.get("neutral", {"yaw": 0.0, "pitch": 0.0, "roll": 0.0})),
                neutral_gaze=Gaze(**enrolled["neutral_gaze"]) if enrolled.get("neutral_gaze") else None,
            )
        return cls(
            job_id=data["job_id"],
            session_id=data["session_id"],
            seq=data["seq"],
            frame=base64.b64decode(data["frame_b64"]),
            enrolled=enrolled,
            identity=data.get("identity", True),
            objects=frozenset(data.get("objects", ["cell phone"])),
            max_bytes=data.get("max_bytes", 1_000_000),
            deadline=data.get("deadline", 0.0),
            want_thumbnail=data.get("want_thumbnail", False),
            pack=data.get("pack"),
            priority=data.get("priority", 0.0),
            objects_memory=ObjectsMemory.from_payload(data["objects_memory"]) if data.get("objects_memory") else None,
        )


@dataclass(frozen=True)
class AnalysisResult:
    job_id: str
    status: str
    observation: dict[str, Any] | None = None
    reason: str | None = None
    message: str | None = None
    worker_ms: float | None = None
    # The CPU time the worker process spent on it: its wall time less the time it waited for a core, which on a box
    # shared with the server and the database is a third more under load (issue 8).
    worker_cpu_ms: float | None = None
    thumbnail_b64: str | None = None
    worker: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    # The skip rule: the frame's signature (base64), and the frame whose object-detector result this one re-used
    # (None: the detector ran on this frame), with the measured change that allowed it.
    signature_b64: str | None = None
    objects_from_seq: int | None = None
    change: float | None = None
    # The same for the identity check: the frame whose matching identity this one re-used (None: it was measured
    # here, or not checked).
    identity_from_seq: int | None = None
    # The same for the faces: the frame whose faces this one re-used (None: the face detector ran on this frame,
    # as it does where the re-used face was too small or had moved, proctoring.vision.pipeline).
    faces_from_seq: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnalysisResult:
        return cls(**data)


# --- Worker side -----------------------------------------------------------------------------------------------

_analyzer: Any = None
_analyzer_error: str | None = None


PARENT_WATCH_EVERY_S = 1.0


def watch_parent(parent_pid: int, *, every_s: float = PARENT_WATCH_EVERY_S) -> threading.Thread:
    """Exit this worker process when its parent is gone (a `kill -9` of daphne or of the Celery master).

    A worker holds 350-650 MB of models; orphaned, it would hold them for ever. Linux's parent-death signal
    (PR_SET_PDEATHSIG) does not fit: it fires when the *thread* that spawned the worker exits, and the local pool
    spawns its workers from a short-lived warm-up thread. So a daemon thread polls the parent pid instead: an
    orphan is re-parented (to init or a subreaper), which changes os.getppid().
    """

    def run() -> None:
        while True:
            if os.getppid() != parent_pid:
                log.warning("inference worker %s: parent %s is gone, exiting", os.getpid(), parent_pid)
                os._exit(0)
            time.sleep(every_s)

    thread = threading.Thread(target=run, daemon=True, name="parent-watch")
    thread.start()
    return thread


@contextlib.contextmanager
def spawning() -> Iterator[None]:
    """Around anything that may spawn a worker process (ProcessPoolExecutor.submit spawns in the calling thread):
    SIGINT is blocked in this thread, so the new process starts with it blocked (the mask survives fork and exec).
    A Ctrl-C that reaches the process group while a worker is still importing stays pending, and the worker drops
    it in worker_process_start, instead of dying mid-import with a KeyboardInterrupt traceback."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def worker_process_start(
    pack: str | None = None,
    threads: int = 1,
    analyzer_path: str | None = None,
    parent_pid: int | None = None,
    nice: int = 0,
) -> None:
    """The initializer of a dedicated worker process (the local pool's, a Celery prefork child): it dies with its
    parent, lowers its CPU priority by `nice` (settings.INFERENCE_NICE), then loads the models. Never called in a
    process that merely analyses a frame itself.

    Ctrl-C reaches every process of the terminal's process group: the parent stops its workers in order (atexit in
    proctoring.pool), so a worker ignores SIGINT instead of dying mid-frame with a KeyboardInterrupt traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked by spawning(); now ignored instead
    # The parent's pid as the parent saw it: a worker still starting when the parent died would otherwise read its
    # new parent (init) here and watch that for ever.
    watch_parent(parent_pid or os.getppid())
    if nice > 0:
        os.nice(nice)
    worker_init(pack, threads, analyzer_path)


def worker_init(pack: str | None = None, threads: int = 1, analyzer_path: str | None = None) -> None:
    """Load the models once per worker process (ProcessPoolExecutor initializer, Celery worker_process_init).

    Thread counts are pinned before any numeric library starts: on a 2-core machine, each process spawning one
    thread per core makes the workers and the ASGI server fight for the same cores.
    """
    global _analyzer, _analyzer_error
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    try:
        import cv2  # lazy: OpenCV stays out of the ASGI server

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
    3. The analyzer runs with the enrolled face (its neutral pose makes pose and gaze relative, on every frame),
       compares the embedding only when identity is due, and looks for the configured objects.
       Skip rule: when the job carries the session's last measured object result, that result may still be re-used
       (`reuses_left`), and this frame differs from the measured one by less than CHANGE_THRESHOLD in every block,
       the object detector does not run and the measured objects are re-used (`objects_from_seq` says so). A phone
       that comes into view changes the frame, so the detector runs; and it runs at least every `reuses_left + 1`
       frames whatever happens. When identity is due and that measured frame's identity was a match, the embedding
       is skipped as well and that match re-used (`identity_from_seq`): someone else in the chair changes the frame
       far beyond the threshold, and a mismatch is never re-used.
    4. A small thumbnail is made when the live monitor wants one.
    """
    if isinstance(job, dict):
        job = FrameJob.from_payload(job)
    started, cpu_started = time.perf_counter(), time.process_time()
    worker = f"{os.uname().nodename}:{os.getpid()}"

    def result(status: str, **kw: Any) -> dict[str, Any]:
        ms = round((time.perf_counter() - started) * 1000, 2)
        cpu_ms = round((time.process_time() - cpu_started) * 1000, 2)
        return AnalysisResult(
            job_id=job.job_id, status=status, worker_ms=ms, worker_cpu_ms=cpu_ms, worker=worker, **kw
        ).to_dict()

    if job.deadline and time.time() > job.deadline:
        return result(EXPIRED, reason="stale", message="The frame waited too long and was skipped.")

    try:
        image = decode_frame(job.frame, max_bytes=job.max_bytes)
    except FrameError as exc:
        return result(REJECTED, reason=exc.reason, message=exc.message)
    if _analyzer is None:
        worker_init(job.pack)
    if _analyzer is None:
        return result(ERROR, reason="models", message=_analyzer_error)
    sig = signature(image) if job.objects else None
    memory = job.objects_memory
    moved = change(sig, memory.signature) if sig is not None and memory is not None else None
    # The session's last measured frame, when this one may re-use its measurements.
    unchanged = moved is not None and moved < CHANGE_THRESHOLD
    reused = memory if memory is not None and memory.reuses_left > 0 and unchanged else None
    reuse_identity = reused is not None and job.identity and job.enrolled is not None and reused.identity is not None
    known_faces = None
    if reused is not None and reused.faces is not None:
        known_faces = tuple(Face.from_dict(f) for f in reused.faces)
    try:
        obs = _analyzer.analyze(
            image,
            enrolled=job.enrolled,
            objects=frozenset() if reused is not None else job.objects,
            embed=job.identity and not reuse_identity,
            faces=known_faces,
        )
    except Exception as exc:  # noqa: BLE001 - a server error is reported as such, never as the student's fault
        log.exception("analysis failed for session %s frame %s", job.session_id, job.seq)
        return result(ERROR, reason="analysis", message=f"{type(exc).__name__}: {exc}")
    if not job.identity:
        # Identity was not asked of this frame: nothing is said about it, not even that it could not be compared.
        obs = replace(obs, identity_error=None)
    if reused is not None:
        obs = replace(
            obs,
            objects=tuple(
                DetectedObject(label=o["label"], box=tuple(o["box"]), score=o["score"]) for o in reused.objects
            ),
        )
    # Only while the frame still shows a face: an empty chair is measured as such, not given the old match.
    reuse_identity = reuse_identity and bool(obs.faces) and obs.identity_error is None
    if reuse_identity and reused is not None and reused.identity is not None:
        obs = replace(obs, identity=Identity(**reused.identity))
    # The analyzer detects the faces again where a remembered one was too small or had moved.
    faces_reused = known_faces is not None and "detect" not in obs.timings_ms
    thumbnail = make_thumbnail(image) if job.want_thumbnail else None
    return result(
        OK,
        observation=obs.to_dict(),
        thumbnail_b64=thumbnail,
        timings=dict(obs.timings_ms),
        signature_b64=base64.b64encode(sig).decode("ascii") if sig is not None else None,
        objects_from_seq=reused.seq if reused is not None else None,
        change=round(moved, 2) if moved is not None else None,
        identity_from_seq=reused.seq if reuse_identity and reused is not None else None,
        faces_from_seq=reused.seq if faces_reused and reused is not None else None,
    )


def make_thumbnail(image: Any) -> str | None:
    """A base64 JPEG about 160 px wide and under 20 KB, for the instructor's live monitor tile."""
    import cv2  # lazy: OpenCV stays out of the ASGI server

    height, width = image.shape[:2]
    if width <= 0 or height <= 0:
        return None
    # Bounded on both sides: the decoder already refuses absurd shapes, and this stays small whatever it is given.
    small = cv2.resize(image, fit_within(width, height, THUMBNAIL_WIDTH, THUMBNAIL_WIDTH))
    for quality in THUMBNAIL_QUALITIES:
        ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok and len(buf) <= THUMBNAIL_MAX_BYTES:
            return base64.b64encode(buf.tobytes()).decode("ascii")
    return None


def thumbnail_from_bytes(frame: bytes) -> str | None:
    """The same thumbnail from a frame's bytes, in the ASGI server (an alert's own picture, proctoring.consumers).
    Pillow's JPEG draft mode decodes at a fraction of the size, and the server never loads OpenCV (about 30 MB).
    Only for bytes a worker has already decoded and accepted; None if they cannot be read after all."""
    from PIL import Image  # lazy: Pillow only when a picture is made

    try:
        with Image.open(io.BytesIO(frame)) as image:
            image.draft("RGB", (THUMBNAIL_WIDTH * 2, THUMBNAIL_WIDTH * 2))
            small = image.convert("RGB")
            small.thumbnail((THUMBNAIL_WIDTH, THUMBNAIL_WIDTH))
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    for quality in THUMBNAIL_QUALITIES:
        buffer = io.BytesIO()
        small.save(buffer, "JPEG", quality=quality)
        if buffer.tell() <= THUMBNAIL_MAX_BYTES:
            return base64.b64encode(buffer.getvalue()).decode("ascii")
    return None


# --- Server side -----------------------------------------------------------------------------------------------


class InferencePool(abc.ABC):
    """Hands one frame to a worker and awaits its result without blocking the event loop.

    The consumer keeps at most one job per session in flight (latest-frame-wins lives in the consumer, which owns
    the per-session slot); the pool transports, bounds the wait, turns every failure into a result, and says how
    often clients should send frames (`pace_interval_ms`) so that overload slows everyone a little instead of
    shedding frames at random.
    """

    name = "abstract"
    # Pace clients so that the workers are at most this busy on average: the rest absorbs bursts (frames do not
    # arrive evenly) without a queue building up.
    TARGET_UTILISATION = 0.8
    # The longest interval the server asks for, as a multiple of the exam's own, and absolutely: every student
    # still gets a result at least every 6 s (issue 8).
    MAX_PACE_FACTOR = 2.5
    MAX_PACE_MS = 5000
    PACE_STEP_MS = 500
    # Every change of pace reaches every student: hold each one at least this long, and slow the room down only
    # after frames have kept waiting for a while (a room that connects at once is a burst, not an overload).
    PACE_HOLD_S = 10.0
    # A pace that eases again within EASED_RECENTLY_S of the last easing holds this long first: the capacity
    # estimate moves with the room's mix of frames, and easing every 10 s told 300 students a new interval every
    # 15 s on average (2,458 PACE events in 2 minutes). The first easing, after a connect burst, still takes 10 s:
    # holding that one 30 s cost a room of 100 students 8% of its frames.
    PACE_DOWN_HOLD_S = 30.0
    EASED_RECENTLY_S = 120.0
    CONGESTED_FOR_S = 2.0
    # Where the workers' speed is unknown (Celery), the rate of answers while frames are shed stands in for it, over
    # this window.
    SERVED_WINDOW_S = 10.0
    # A join paces at once only past this share of the capacity estimate. The estimate spreads by about 10% while a
    # room runs (116-139 frames/s over ten minutes of 200 students, s25_zen5_soak_200_10min in
    # bench/results/capacity.json), and reads lowest while the room is still connecting: there the last joiners
    # of 200 students met 98 frames/s against their 100 and paced the room, which its frames never asked for, for
    # 70 s (3% of the ten minutes' frames).
    JOIN_PAST_CAPACITY = 1.1
    # A pace factor at or under this is released to the exam's own interval rather than kept: in half-second steps
    # anything over 1.0 is at least 2.5 s at a 2 s interval, a fifth of the frames, for a room the measured capacity
    # would barely have paced (the correction and easing below).
    RELEASE_UNDER = 1.1
    # A release of a room near capacity (the probe) that frames waiting undo within PROBE_FAILED_S doubles the calm
    # the next one waits for (from PACE_HOLD_S up to PROBE_MAX_HOLD_S): a room the estimate flatters is told a new
    # interval a handful of times an exam, not every 20 s.
    PROBE_FAILED_S = 60.0
    PROBE_MAX_HOLD_S = 480.0

    def __init__(self, *, timeout_s: float = 5.0) -> None:
        self.timeout_s = timeout_s
        self._sessions: dict[str, float] = {}  # consumer channel -> frames per second it sends at its own interval
        # A worker's time for each of the last frames: their mean is the service time, and workers / service time
        # the capacity. A window, not a fast moving average: frames that re-use the phone detector cost a third of
        # those that run it, and a burst of either must not swing the pace.
        self._service_times: collections.deque[float] = collections.deque(maxlen=SERVICE_WINDOW)
        self._cpu_times: collections.deque[float] = collections.deque(maxlen=SERVICE_WINDOW)
        # The same for sessions' first frames (see _observe): what a room costs while it connects, and the only
        # measure there is until its sessions are running.
        self._starting_times: collections.deque[float] = collections.deque(maxlen=SERVICE_WINDOW)
        self._starting_cpu_times: collections.deque[float] = collections.deque(maxlen=SERVICE_WINDOW)
        self.worker_cpu_s = 0.0  # all the workers' CPU time so far, from their results
        self._served: collections.deque[float] = collections.deque()  # monotonic times of the recent answers
        self.frames_done = 0  # frames the workers have analysed so far
        self._pace_factor = 1.0
        self._paced_at = 0.0
        self._eased_at = float("-inf")
        # Monotonic times of the sheds of the last 20 s (capacity-blind back ends pace on these).
        self._sheds: collections.deque[float] = collections.deque()
        self._logged_at = time.monotonic()
        self._congested_since: float | None = None
        self._calm_since = time.monotonic()  # nothing waited nor was shed since (the probe)
        self._probed_at = float("-inf")  # the last release of a room near capacity
        self._probed_from = 1.0  # and the pace it left
        self._probe_hold_s = self.PACE_HOLD_S
        self._paced_provisionally = False  # the current pace was set on a provisional capacity

    async def analyze(self, job: FrameJob, *, reply_channel: str | None = None) -> AnalysisResult:
        try:
            result = await asyncio.wait_for(self._submit(job, reply_channel), self.timeout_s)
        except TimeoutError:
            self._on_timeout(job)
            return AnalysisResult(job_id=job.job_id, status=TIMEOUT, reason="timeout", message="No result in time.")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a transport failure is a server error, never the student's
            log.exception("inference pool %s failed for session %s", self.name, job.session_id)
            return AnalysisResult(job_id=job.job_id, status=ERROR, reason="pool", message=f"{type(exc).__name__}")
        self._observe(result, job)
        return result

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

    # --- Push-back ------------------------------------------------------------------------------------------------

    def join(self, key: str, *, interval_ms: int) -> None:
        """A streaming session (the consumer's channel name) and the frame interval its exam asks for."""
        self._sessions[key] = 1000.0 / max(interval_ms, 1)

    def leave(self, key: str) -> None:
        self._sessions.pop(key, None)

    def _observe(self, result: AnalysisResult, job: FrameJob | None = None) -> None:
        if result.worker_cpu_ms is not None:
            self.worker_cpu_s += result.worker_cpu_ms / 1000.0
        # A session's first frame (or its first after a reconnect) has no earlier result to re-use, so it runs
        # every check: 36-40 ms of a worker's CPU on a box where the room's frames then average 22 ms. A room that
        # connects at once fills the window with such frames, and the capacity read from them paced 100 students
        # to 4 s for their first 10 s on a box that serves them at 2 s (bench/results/capacity.json,
        # session23_epyc_slow). They are the cost of starting, not of the room: a window of their own, which stands
        # in only until the room's frames have been measured (`provisional`).
        starting = job is not None and bool(job.objects) and job.objects_memory is None
        if result.status == OK:
            self.frames_done += 1
            now = time.monotonic()
            self._served.append(now)
            self._forget_served(now)
        if result.status == OK and result.worker_ms is not None:
            wall, cpu = (
                (self._starting_times, self._starting_cpu_times) if starting else (self._service_times, self._cpu_times)
            )
            wall.append(result.worker_ms / 1000.0)
            if result.worker_cpu_ms is not None:
                cpu.append(result.worker_cpu_ms / 1000.0)
        elif result.status == EXPIRED and result.reason != "warming":
            self._sheds.append(time.monotonic())

    def _forget_served(self, now: float) -> None:
        while self._served and now - self._served[0] > self.SERVED_WINDOW_S:
            self._served.popleft()

    def _served_fps(self, now: float) -> float | None:
        """Frames the workers answered a second over the last SERVED_WINDOW_S (None before that much has passed
        since the first answer)."""
        self._forget_served(now)
        if not self._served or now - self._served[0] < self.SERVED_WINDOW_S / 2:
            return None
        return len(self._served) / self.SERVED_WINDOW_S

    @staticmethod
    def _mean(window: collections.deque[float]) -> float | None:
        return sum(window) / len(window) if len(window) >= min(32, SERVICE_WINDOW) else None

    @property
    def provisional(self) -> bool:
        """The service times come from sessions' first frames only: the room is still connecting."""
        return self._mean(self._service_times) is None

    @property
    def _service_s(self) -> float | None:
        """Mean time a worker spent on one of the recent frames, once there are enough of them to trust; until the
        room's running frames are, its first frames' (`provisional`)."""
        return self._mean(self._starting_times if self.provisional else self._service_times)

    @property
    def _cpu_service_s(self) -> float | None:
        """Mean CPU time a worker spent on one of the recent frames, as _service_s."""
        return self._mean(self._starting_cpu_times if self.provisional else self._cpu_times)

    def capacity_fps(self) -> float | None:
        """Frames per second the workers can analyse, or None when this server cannot know (remote workers)."""
        return None

    def _congested(self, now: float) -> bool:
        """Frames are being shed now (within 5 s): the pool cannot keep up."""
        return bool(self._sheds) and now - self._sheds[-1] < 5.0

    def stats(self) -> dict[str, Any]:
        """What an operator wants to see of the pool now (logged every 30 s at INFO while frames flow)."""
        capacity = self.capacity_fps()
        return {
            "sessions": len(self._sessions),
            "demand_fps": round(self.demand_fps(), 1),
            "capacity_fps": round(capacity, 1) if capacity else None,
            "service_ms": round(self._service_s * 1000, 1) if self._service_s else None,
            "pace_factor": round(self._pace_factor, 3),
        }

    def _ease_hold(self, now: float) -> float:
        """How long the current pace must have held before it may ease (see PACE_DOWN_HOLD_S)."""
        return self.PACE_DOWN_HOLD_S if now - self._eased_at < self.EASED_RECENTLY_S else self.PACE_HOLD_S

    def demand_fps(self) -> float:
        """Frames per second the connected sessions send at their exams' own intervals."""
        return sum(self._sessions.values())

    def pace_interval_ms(self, base_ms: int, *, joining: bool = False) -> int:
        """The frame interval clients should use now: the exam's own while the workers keep up, longer (in steps of
        half a second, at most MAX_PACE_FACTOR times and MAX_PACE_MS) while they do not.

        With a known capacity the factor is demand / (capacity x TARGET_UTILISATION), so the interval settles where
        the workers keep up, before frames are shed. Without one (Celery: the workers are elsewhere) it follows the
        sheds: up a step while frames are shed, down a step after 20 s without one. It rises after CONGESTED_FOR_S
        of frames waiting or shed (at once when a joining student takes demand past capacity) and each change holds
        PACE_HOLD_S (hysteresis), so clients are not told a new interval every frame. `joining`: asked for a student
        who is connecting (READY).
        """
        now = time.monotonic()
        factor_before = self._pace_factor
        capacity = self.capacity_fps()
        while self._sheds and now - self._sheds[0] >= 20.0:
            self._sheds.popleft()
        if capacity:
            wanted = self.demand_fps() / (capacity * self.TARGET_UTILISATION)
            # The estimate says how much to slow down; frames actually waiting (or shed) say whether to. Right
            # after a room connects the workers' times run high (the server is opening 150 sessions at once), and
            # slowing everyone on that alone cost a tenth of the frames of a 2-minute run.
            congested = self._congested(now)
            if not congested:
                self._congested_since = None
            else:
                self._calm_since = now
                if self._congested_since is None:
                    self._congested_since = now
            # The workers can take the room at the exam's own interval within TARGET_UTILISATION, by their measured
            # capacity: such a room is served at that interval unless its frames actually wait, paced only while
            # they do and released once they have not for a while (the probe below). Before the probe a room paced
            # once was released only under 0.9 of that (RELEASE_BELOW), and 150 students on a box that serves them
            # at 2 s (p95 274 ms, 99.8% answered: s24_int8_unpaced in bench/results/capacity.json) stayed at 2.5 s
            # for the whole exam after the frames its connect burst shed (s24_int8_recheck: 79% of frames sent).
            # Not higher: released at 89-94% of a capacity measured while paced, that room shed 15-60 frames each
            # time before it was paced again, and a student once waited 6.8 s (s24_probe_095, s24_probe_090).
            covered = wanted <= 1.0
            failed_probe = self._pace_factor == 1.0 and now - self._probed_at < self.PROBE_FAILED_S
            # A pace set while the capacity was provisional (read from the room's first frames, which cost nearly
            # twice its running ones) is corrected as soon as the running frames are measured, without the hold:
            # held, it paced 100 students to 4 s for 10 s on a box that serves them at 2 s (session23_epyc_slow in
            # bench/results/capacity.json: 94% of their frames sent, no knee; corrected, 99.1%).
            provisional = self.provisional
            correcting = self._paced_provisionally and not provisional
            settled = now - self._paced_at >= self.PACE_HOLD_S
            # A student joining a room that already asks clearly more than the workers can give at all (not just
            # more than the comfortable 80%) slows the room at once: waiting for frames to pile up first costs
            # seconds of shedding when a whole room connects at twice the capacity. Clearly: past the estimate's
            # own spread (see JOIN_PAST_CAPACITY).
            congested_for = now - self._congested_since if self._congested_since is not None else 0.0
            overloaded = (congested and congested_for >= self.CONGESTED_FOR_S) or (
                joining and self.demand_fps() > capacity * self.JOIN_PAST_CAPACITY
            )
            if correcting:
                # The provisional pace undone: the pace the measured capacity asks of a room at the exam's own
                # interval, and none below 1.1, where a room at that interval would not have been paced at all (a
                # factor of 1.05 is a 2.5 s interval, a fifth of the frames: 125 students here stayed at 2.5 s for
                # the whole step, where at 2 s the box served them with p95 367 ms and 99.6% answered).
                self._pace_factor = wanted if wanted > self.RELEASE_UNDER else 1.0
                self._paced_at = now
                self._paced_provisionally = False
            elif (
                (wanted > self._pace_factor * 1.1 or (self._pace_factor == 1.0 and (wanted > 1.0 or failed_probe)))
                and overloaded
                and (settled or self._pace_factor == 1.0)
            ):
                # Frames have waited: slow down to the comfortable share. Right after a release near capacity, that
                # release failed: back to the pace it left at least, and the next one waits twice as long for calm.
                self._probe_hold_s = (
                    min(self._probe_hold_s * 2, self.PROBE_MAX_HOLD_S) if failed_probe else self.PACE_HOLD_S
                )
                self._probed_at = float("-inf")
                self._pace_factor = max(wanted, self._probed_from) if failed_probe else wanted
                self._paced_at = now
                self._paced_provisionally = provisional
            elif (
                self._pace_factor > 1.0
                and now - self._paced_at >= self._ease_hold(now)
                and (wanted < self._pace_factor * 0.8 or (wanted <= RELEASE_BELOW and not congested))
            ):
                self._eased_at = now
                # Down when demand fell well below the paced level, or to the exam's own interval once the workers
                # can take it with room to spare and nothing waits: a room paced a little by its connect burst
                # (1.07) used to stay paced for the whole exam, since 0.8 x 1.07 is below any real load. Not at
                # 1.0: a room near capacity then flapped between paced and not (1,411 PACE events in 2 minutes at
                # 150 students, session16 in bench/results/capacity.json).
                if wanted > self.RELEASE_UNDER:
                    self._pace_factor = wanted
                else:
                    # Not a hair above 1.0 either: x1.004 is a 2.5 s interval (half-second steps), and it held 200
                    # students there for 51 s while the log read "x1.00" (s25_zen5_stretch). Under 1.1 the room is
                    # released as the correction above releases it, and as the probe does: frames waiting within
                    # PROBE_FAILED_S send it back and double the next calm wait.
                    self._probed_at, self._probed_from = now, self._pace_factor
                    self._pace_factor = 1.0
                self._paced_at = now
            elif (
                self._pace_factor > 1.0
                and covered
                and now - self._calm_since >= self._probe_hold_s
                and now - self._paced_at >= self._ease_hold(now)
            ):
                # The probe: paced, though the workers can take the room at its own interval and nothing has waited
                # for a while. Back to that interval; frames waiting again pace it again (and double the wait).
                self._eased_at = now
                self._probed_at, self._probed_from = now, self._pace_factor
                self._pace_factor = 1.0
                self._paced_at = now
        else:
            if self._sheds and now - self._paced_at >= 5.0 and self._sheds[-1] > self._paced_at:
                # Frames are shed, so the workers are saturated: what they answered over the last SERVED_WINDOW_S
                # is what they can do now. Slow the room to that at the comfortable share at once, not a quarter
                # step every 5 s: one box of Celery workers at 300 students took 30 s of sheds to reach x2.5, and
                # eased back into them (s25_zen5_celery_one_loop: p95 6.2 s, 263 students over 6 s without a result).
                served = self._served_fps(now)
                wanted = self.demand_fps() / (served * self.TARGET_UTILISATION) if served else 0.0
                self._pace_factor = max(self._pace_factor + 0.25, wanted)
                self._paced_at = now
            elif not self._sheds and self._pace_factor > 1.0 and now - self._paced_at >= 20.0:
                self._pace_factor = max(1.0, self._pace_factor - 0.25)
                self._paced_at = now
        self._pace_factor = min(self._pace_factor, self.MAX_PACE_FACTOR)
        if self._pace_factor != factor_before:
            log.info("inference pool %s: pace x%.3f (was x%.3f): %s", self.name, self._pace_factor, factor_before,
                     self.stats())  # fmt: skip
        if now - self._logged_at >= 30.0:
            self._logged_at = now
            log.info("inference pool %s: %s", self.name, self.stats())
        if self._pace_factor <= 1.0:
            return base_ms
        step = self.PACE_STEP_MS
        paced = int(-(-base_ms * self._pace_factor // step) * step)
        return max(base_ms, min(paced, self.MAX_PACE_MS, int(base_ms * self.MAX_PACE_FACTOR)))
