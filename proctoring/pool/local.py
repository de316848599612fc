"""The in-process back end: a ProcessPoolExecutor of spawned worker processes, each loading the models once.

Spawn, not fork: the ASGI server has an event loop, threads and database connections that a forked child must not
inherit. A worker that dies (killed, out of memory) breaks the executor; the pool then builds a fresh one, and the
frames that were in flight come back as server errors, never counted against the students.

Frames never queue inside the executor. At most three per worker are handed over (one running, two ready, so a
worker never idles while the next frame is pickled to it); the rest wait here, one per session at most (the
consumer's latest-frame-wins), served to the session that has waited longest since its last result first. A frame
that has waited WAIT_BUDGET_S is shed (OVERLOADED, never counted against the student) instead of every frame
growing late; under overload that is the frame of a student served recently, since the others go first. This is
what keeps overload from collapsing: before issue 8 every session's frame went straight into the executor's
unbounded queue, all of them grew stale together, and a frame that timed out in that queue made the pool kill its
healthy workers.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import heapq
import itertools
import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from .base import ERROR, EXPIRED, AnalysisResult, FrameJob, InferencePool, analyze_job, spawning, worker_process_start

log = logging.getLogger(__name__)

# Frames handed to each worker process at once: one being analysed, two ready behind it. Two, not one: a result's
# way back and the next frame's way in both need the server's GIL, which its database threads and event loop hold
# most of the time at 150 students; with one ready frame the workers idled half the time while 26 frames waited
# here (capacity 82-90 frames/s, p95 739 ms), with two they kept busy (95-100 frames/s, p95 217 ms; the runs
# decode_cpu_phase_150 and per_worker3_150 in bench/results/capacity.json).
PER_WORKER = 3
# The longest a frame may wait here for a worker. A bound in time, not in frames: a count derived from the workers'
# measured speed shed frames at random while a room connected and the measurement ran high. 1.5 s rather than 1 s:
# on the slower 2-core box (bench/results/capacity.json, int8_ramp against int8_wait1_5) 150 students got 99.4% of
# their frames answered instead of 98.7%, with p95 283 ms instead of 439 ms, and at 300 p95 fell from 4.0 to 2.9 s.
# A frame that waited that long is still worth its answer; one older than its interval is shed as stale anyway.
WAIT_BUDGET_S = 1.5
# Every connected student gets a result at least this often, even under overload (issue 8). A frame whose shedding
# would break that (the time since the student's last result plus one more interval reaches it, with a second to
# spare) is never shed; it is near the front anyway, since the longest-unserved go first.
MAX_GAP_S = 6.0
# What a protected frame leaves of the pool's timeout for its answer: its way to a worker, two frames ahead of it
# there and its own analysis take well under this on 2 cores.
PROTECTED_ANSWER_S = 1.5
# Frames past the budget are swept out at most this often (the sweep looks at every waiting frame).
SWEEP_EVERY_S = 0.05
# The window over which the CPU used by everything but the workers is measured (capacity_fps).
OTHER_LOAD_WINDOW_S = 30.0


class OtherLoad:
    """How many cores everything but the inference workers keeps busy on this machine (the server, the database,
    anything else) over about the last OTHER_LOAD_WINDOW_S: the machine's busy time from /proc/stat less the workers'
    own CPU time, which their results report. Without /proc/stat (not Linux), this process's own CPU time stands in.
    """

    def __init__(self) -> None:
        self._samples: collections.deque[tuple[float, float, float, int]] = collections.deque()
        self.cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        # Frames analysed per second over the same window (None until known): the other load per frame.
        self.frames_per_s: float | None = None

    def _busy_s(self) -> float:
        try:
            with open("/proc/stat", "rb") as stat:
                fields = stat.readline().split()
            # user nice system idle iowait irq softirq steal: guest time is already inside user.
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
            return (user + nice + system + irq + softirq + steal) / self._tick
        except (OSError, ValueError):
            times = os.times()
            return times.user + times.system

    def update(self, now: float, workers_cpu_s: float, frames: int = 0) -> float | None:
        """Sample (at most once a second) and return the other load in cores, or None until a window is known.
        `frames`: how many frames the workers have analysed so far (frames_per_s)."""
        if not self._samples or now - self._samples[-1][0] >= 1.0:
            self._samples.append((now, self._busy_s(), workers_cpu_s, frames))
            while len(self._samples) > 2 and now - self._samples[1][0] >= OTHER_LOAD_WINDOW_S:
                self._samples.popleft()
        (t0, busy0, workers0, frames0), (t1, busy1, workers1, frames1) = self._samples[0], self._samples[-1]
        if t1 - t0 < 2.0:
            return None
        self.frames_per_s = (frames1 - frames0) / (t1 - t0)
        return max(0.0, ((busy1 - busy0) - (workers1 - workers0)) / (t1 - t0))


@dataclasses.dataclass(order=True)
class _Entry:
    priority: float
    order: int
    job: FrameJob = dataclasses.field(compare=False)
    waiter: asyncio.Future[AnalysisResult] = dataclasses.field(compare=False)
    dispatched: int | None = dataclasses.field(default=None, compare=False)
    dispatched_at: float | None = dataclasses.field(default=None, compare=False)
    dropped: bool = dataclasses.field(default=False, compare=False)
    arrived: float = dataclasses.field(default_factory=time.monotonic, compare=False)
    protected: bool = dataclasses.field(default=False, compare=False)


class LocalPool(InferencePool):
    name = "local"

    def __init__(
        self,
        *,
        workers: int = 1,
        threads: int = 1,
        pack: str | None = None,
        timeout_s: float = 5.0,
        analyzer_path: str | None = None,
        nice: int = 0,
    ) -> None:
        super().__init__(timeout_s=timeout_s)
        self.workers = max(1, workers)
        self.threads = max(1, threads)
        self.nice = nice
        self.pack = pack
        self.analyzer_path = analyzer_path or os.environ.get("INFERENCE_ANALYZER")
        self._executor: ProcessPoolExecutor | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self.respawns = 0
        # A protected frame may wait until a typical answer could still come within the timeout (see _late).
        self._protected_wait_s = max(WAIT_BUDGET_S, self.timeout_s - PROTECTED_ANSWER_S)
        # The fair wait (event-loop side): a heap by (last served, arrival), and the count handed to the executor.
        self._waiting: list[_Entry] = []
        self._order = itertools.count()
        self._running = 0
        self._dispatch_order = itertools.count(1)
        self._finished_up_to = 0  # the highest dispatch number that has come back
        self._last_finish = time.monotonic()
        self._dispatched: dict[str, _Entry] = {}  # job id -> entry, while a worker has it
        self._swept_at = 0.0
        self.shed = 0
        self._other_load = OtherLoad()

    def _ensure(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                executor = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=worker_process_start,
                    initargs=(self.pack, self.threads, self.analyzer_path, os.getpid(), self.nice),
                )
                ready = threading.Event()
                self._executor, self._ready = executor, ready
                # Loading a model pack takes 5-15 s, far longer than a frame may wait. Warm the workers in the
                # background and shed frames (EXPIRED -> OVERLOADED) until then, instead of letting them time out
                # and having the timeout kill the very workers that are still loading.
                threading.Thread(target=self._warm, args=(executor, ready), daemon=True, name="pool-warm").start()
            return self._executor

    def _warm(self, executor: ProcessPoolExecutor, ready: threading.Event) -> None:
        try:
            with spawning():
                futures = [executor.submit(os.getpid) for _ in range(self.workers * 2)]
            for future in futures:
                future.result(timeout=300)
        except Exception:  # noqa: BLE001 - a broken pool is replaced on the next frame
            log.warning("inference pool: warm-up failed", exc_info=True)
        finally:
            ready.set()

    def warm(self) -> None:
        """Start the workers loading their models now, without waiting (the consumer calls it at connect)."""
        self._ensure()

    def start(self) -> None:
        """Start every worker now and wait until each has loaded its models (otherwise the first frames are shed)."""
        self._ensure()
        self._ready.wait(timeout=300)

    @property
    def ready(self) -> bool:
        return self._executor is not None and self._ready.is_set()

    def _replace(self, broken: ProcessPoolExecutor, *, kill: bool) -> None:
        with self._lock:
            if self._executor is not broken:
                return  # another session already replaced it
            self._executor = None
            self.respawns += 1
        if kill:
            # A hung worker never returns; terminate them so the replacement does not compete for the cores.
            for process in list(getattr(broken, "_processes", {}).values()):
                try:
                    os.kill(process.pid, signal.SIGKILL)
                except (ProcessLookupError, AttributeError):
                    pass
        broken.shutdown(wait=False, cancel_futures=True)
        log.warning("inference pool: replaced the worker processes (respawn %d)", self.respawns)

    async def _submit(self, job: FrameJob, reply_channel: str | None) -> AnalysisResult:
        self._ensure()
        if not self._ready.is_set():
            # Cold start (or a replaced worker): wait for the models a little, within the pool's timeout, and give
            # the frame a fresh deadline; a scripted one-off frame or a student's first frame is worth the wait.
            # Beyond that the frame is shed (OVERLOADED), never left to time out: the timeout would count as a
            # server error and must not kill workers that are merely loading.
            span = max(job.deadline - time.time(), 1.0) if job.deadline else 0.0
            limit = time.monotonic() + max(0.1, self.timeout_s - 0.5)
            while not self._ready.is_set() and time.monotonic() < limit:
                await asyncio.sleep(0.05)
            if not self._ready.is_set():
                return AnalysisResult(
                    job_id=job.job_id, status=EXPIRED, reason="warming", message="The models are still loading."
                )
            if span:
                job = dataclasses.replace(job, deadline=time.time() + span)
        waiter: asyncio.Future[AnalysisResult] = asyncio.get_running_loop().create_future()
        entry = _Entry(job.priority, next(self._order), job, waiter)
        self._admit(entry)
        self._pump()
        try:
            return await entry.waiter
        finally:
            if entry.dispatched is None and not entry.dropped:
                # Timed out or cancelled while waiting here: it never reached a worker.
                entry.dropped = True
                self._waiting.remove(entry)
                heapq.heapify(self._waiting)

    def _admit(self, entry: _Entry) -> None:
        now = time.time()
        interval = max(entry.job.deadline - now, 0.0) if entry.job.deadline else 0.0
        entry.protected = (now - entry.job.priority) + interval >= MAX_GAP_S - 1.0
        heapq.heappush(self._waiting, entry)

    def _late(self, entry: _Entry, now: float) -> str | None:
        """Why a waiting frame must be shed now, or None: past the wait budget, or past its deadline (a newer frame
        of that student is on its way). A frame protected by the 6 s rule is not shed for that: its student's next
        frame cannot reach the pool before this one is answered (latest-frame-wins), so shedding it would only
        lengthen the gap. A student who has had no result yet waits from the connect (the job's priority).

        Only when even a protected frame has waited so long that it could no longer be answered within the pool's
        timeout is it shed (OVERLOADED, never the student's): left to time out it would be an ERROR. At the
        longest pace (5 s) every frame is protected, and 300 students on the slow Intel box then queued 100-130
        frames until 334 of them timed out (capacity.json, session17_intel_final)."""
        if entry.protected:
            return "overloaded" if now - entry.arrived > self._protected_wait_s else None
        if now - entry.arrived > WAIT_BUDGET_S:
            return "overloaded"
        if entry.job.deadline and time.time() > entry.job.deadline:
            return "stale"
        return None

    def _sweep(self) -> None:
        """Shed every waiting frame past its wait budget or its deadline, wherever it sits in the heap: a frame of
        a recently served student can sit behind others for long, and must be answered (OVERLOADED) rather than
        left to time out as a server error."""
        now = time.monotonic()
        if now - self._swept_at < SWEEP_EVERY_S:
            return
        self._swept_at = now
        late = [(entry, reason) for entry in self._waiting if (reason := self._late(entry, now))]
        if late:
            for entry, reason in late:
                self._waiting.remove(entry)
                self._shed(entry, reason=reason)
            heapq.heapify(self._waiting)

    def _shed(self, entry: _Entry, reason: str = "overloaded") -> None:
        entry.dropped = True
        self.shed += 1
        if not entry.waiter.done():
            entry.waiter.set_result(
                AnalysisResult(
                    job_id=entry.job.job_id,
                    status=EXPIRED,
                    reason=reason,
                    message="The server is busy; this frame was skipped.",
                )
            )

    def _pump(self) -> None:
        """Hand waiting frames to the executor while it has room; frames past their deadline are shed unsent."""
        loop = asyncio.get_running_loop()
        self._sweep()
        while self._waiting and self._running < self.workers * PER_WORKER:
            entry = heapq.heappop(self._waiting)
            reason = self._late(entry, time.monotonic())
            if reason:
                self._shed(entry, reason=reason)
                continue
            job = entry.job
            if entry.protected:
                # The worker skips a frame past its deadline; a protected frame must be analysed all the same.
                job = dataclasses.replace(job, deadline=0.0)
            executor = self._ensure()
            try:
                with spawning():
                    future = executor.submit(analyze_job, job)
            except (BrokenProcessPool, RuntimeError):
                self._replace(executor, kill=False)
                executor = self._ensure()
                with spawning():
                    future = executor.submit(analyze_job, job)
            entry.dispatched = next(self._dispatch_order)
            entry.dispatched_at = time.monotonic()
            self._dispatched[entry.job.job_id] = entry
            self._running += 1
            future.add_done_callback(functools.partial(self._from_thread, loop, entry, executor=executor))

    def _from_thread(
        self,
        loop: asyncio.AbstractEventLoop,
        entry: _Entry,
        future: Future[dict[str, Any]],
        *,
        executor: ProcessPoolExecutor,
    ) -> None:
        """The executor's callback thread: hand the outcome to the event loop that is waiting for it."""
        try:
            loop.call_soon_threadsafe(self._finished, entry, future, executor)
        except RuntimeError:
            pass  # that loop has closed (the server is stopping): nobody waits for this frame any more

    def _finished(self, entry: _Entry, future: Future[dict[str, Any]], executor: ProcessPoolExecutor) -> None:
        self._running -= 1
        self._dispatched.pop(entry.job.job_id, None)
        self._finished_up_to = max(self._finished_up_to, entry.dispatched or 0)
        self._last_finish = time.monotonic()
        try:
            result = AnalysisResult.from_dict(future.result())
        except BrokenProcessPool:
            # A worker died mid-frame. This frame is lost (a server error); the next one gets a fresh worker.
            self._replace(executor, kill=False)
            result = AnalysisResult(
                job_id=entry.job.job_id, status=ERROR, reason="worker_lost", message="A worker stopped."
            )
        except (Exception, CancelledError) as exc:  # noqa: BLE001 - cancelled by a replacement, or a pickling failure
            result = AnalysisResult(job_id=entry.job.job_id, status=ERROR, reason="pool", message=type(exc).__name__)
        if not entry.waiter.done():
            entry.waiter.set_result(result)
        self._pump()

    def capacity_fps(self) -> float | None:
        """Frames per second the workers can analyse on this machine: the cores they can have (at most one each,
        and no more than the cores the server, the database and the rest leave free), over the CPU time one frame
        takes. Not the workers' wall time: on a 2-core box shared with the server it runs a third above their CPU
        time at 150 students (waiting for a core while the server writes the last result), and capacity from it
        paced a room the box could serve (bench/results/capacity.json, identity_reuse_150). Until both are known,
        the wall time alone.

        The rest of the box works for every frame too (the server's WebSocket, JSON and SQL, PostgreSQL): read at
        the present rate alone, its cores left the workers more than they would have at a higher one, and a paced
        room eased onto that estimate shed frames (200 students eased from 3.5 to 3 s on a capacity of 94 frames/s
        measured at 57, and shed 22 frames in 10 s, in the server's log of a session-24 run on the code before; that
        run is not in bench/results/capacity.json). So the other load
        counts per frame analysed: the capacity is the rate at which the workers' CPU and the rest's, a frame
        each, fill the cores. That is never above the plain figure, and equal to it at saturation."""
        if self._service_s is None or not self.ready:
            return None
        other = self._other_load.update(time.monotonic(), self.worker_cpu_s, self.frames_done)
        cpu_s = self._cpu_service_s
        if other is None or cpu_s is None:
            return self.workers / max(self._service_s, 1e-3)
        cpu_s = max(cpu_s, 1e-3)
        cores = min(float(self.workers), max(0.5, self._other_load.cores - other))
        capacity = cores / cpu_s
        rate = self._other_load.frames_per_s
        if rate is not None and rate >= 1.0:
            per_frame = other / rate
            capacity = min(capacity, max(0.5 / cpu_s, self._other_load.cores / (cpu_s + per_frame)))
        return capacity

    def _congested(self, now: float) -> bool:
        """Shedding, or frames waiting here past half the bound: the workers are behind."""
        oldest = min((e.arrived for e in self._waiting), default=now)
        return super()._congested(now) or now - oldest > WAIT_BUDGET_S / 2

    def stats(self) -> dict[str, Any]:
        cpu_s = self._cpu_service_s
        return {**super().stats(), "cpu_ms": round(cpu_s * 1000, 1) if cpu_s else None,
                "waiting": len(self._waiting), "running": self._running, "shed": self.shed,
                "respawns": self.respawns}  # fmt: skip

    def _on_timeout(self, job: FrameJob) -> None:
        """A frame got no answer in time. Replace the workers only when one is truly hung: a frame that merely
        waited (here, or behind another frame in a busy worker) says nothing about the workers' health.

        Hung means: nothing at all has come back for the whole timeout while frames were out, or this frame has been
        with the workers (not waiting here) for the whole timeout while frames handed over after it came back. A
        frame that waited here for most of its timeout and was then overtaken by one on the other worker is not
        hung: at 300 students on a slow box that rule, without the time with the workers, replaced healthy workers
        four times in two minutes, and every frame in flight became an ERROR (capacity.json,
        session17_intel_precision).
        """
        executor = self._executor
        if executor is None or not self._ready.is_set() or self._running == 0:
            return
        now = time.monotonic()
        silent = now - self._last_finish >= self.timeout_s
        entry = self._dispatched.get(job.job_id)
        overtaken = (
            entry is not None
            and self._finished_up_to > (entry.dispatched or 0)
            and now - (entry.dispatched_at or now) >= self.timeout_s
        )
        if silent or overtaken:
            self._replace(executor, kill=True)

    def worker_pids(self) -> list[int]:
        executor = self._executor
        return [p.pid for p in getattr(executor, "_processes", {}).values()] if executor else []

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
