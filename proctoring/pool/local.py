"""The in-process back end: a ProcessPoolExecutor of spawned worker processes, each loading the models once.

Spawn, not fork: the ASGI server has an event loop, threads and database connections that a forked child must not
inherit. A worker that dies (killed, out of memory) breaks the executor; the pool then builds a fresh one, and the
frames that were in flight come back as server errors, never counted against the students.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from .base import ERROR, EXPIRED, AnalysisResult, FrameJob, InferencePool, analyze_job, worker_init

log = logging.getLogger(__name__)


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
    ) -> None:
        super().__init__(timeout_s=timeout_s)
        self.workers = max(1, workers)
        self.threads = max(1, threads)
        self.pack = pack
        self.analyzer_path = analyzer_path or os.environ.get("INFERENCE_ANALYZER")
        self._executor: ProcessPoolExecutor | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self.respawns = 0

    def _ensure(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                executor = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=worker_init,
                    initargs=(self.pack, self.threads, self.analyzer_path),
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
        executor = self._ensure()
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
            executor = self._ensure()
        try:
            future = executor.submit(analyze_job, job)
        except (BrokenProcessPool, RuntimeError):
            self._replace(executor, kill=False)
            executor = self._ensure()
            future = executor.submit(analyze_job, job)
        try:
            data = await asyncio.wrap_future(future)
        except BrokenProcessPool:
            # A worker died mid-frame. This frame is lost (a server error); the next one gets a fresh worker.
            self._replace(executor, kill=False)
            return AnalysisResult(job_id=job.job_id, status=ERROR, reason="worker_lost", message="A worker stopped.")
        return AnalysisResult.from_dict(data)

    def _on_timeout(self, job: FrameJob) -> None:
        executor = self._executor
        if executor is not None and self._ready.is_set():
            self._replace(executor, kill=True)

    def worker_pids(self) -> list[int]:
        executor = self._executor
        return [p.pid for p in getattr(executor, "_processes", {}).values()] if executor else []

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
