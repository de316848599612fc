"""The Celery back end: frames travel through the broker (Redis) to workers on the `inference` queue, and each
result comes back to the waiting consumer through the channel layer (a small message to its channel name).

Frames never travel on the channel layer. The task carries the enrolled face, so inference workers need no database.
Worker: `celery -A examsite worker -Q inference --pool prefork --concurrency 1 --prefetch-multiplier 1`.
"""

from __future__ import annotations

import asyncio
import functools
from datetime import UTC, datetime
from typing import Any

from .base import AnalysisResult, FrameJob, InferencePool

TASK_NAME = "proctoring.tasks.analyze_frame"
QUEUE = "inference"


class CeleryPool(InferencePool):
    name = "celery"

    def __init__(self, *, timeout_s: float = 5.0, app: Any = None) -> None:
        super().__init__(timeout_s=timeout_s)
        if app is None:
            from examsite.celery import app  # lazy: the Celery app only when no app is given
        self.app = app
        self._waiting: dict[str, asyncio.Future[AnalysisResult]] = {}

    @property
    def needs_reply_channel(self) -> bool:
        return True

    async def _submit(self, job: FrameJob, reply_channel: str | None) -> AnalysisResult:
        if not reply_channel:
            raise ValueError("the Celery pool needs the consumer's channel name to send the result back")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[AnalysisResult] = loop.create_future()
        self._waiting[job.job_id] = waiter
        payload = job.to_payload()
        payload["reply_channel"] = reply_channel
        send = functools.partial(
            self.app.send_task,
            TASK_NAME,
            args=[payload],
            queue=QUEUE,
            # Two clocks, on purpose. The worker answers EXPIRED itself for a frame past its deadline, so the
            # consumer hears about the shed frame at once. Celery's own expiry comes later, when the consumer has
            # stopped waiting (its timeout): only then may a stale message vanish unanswered from the queue.
            expires=datetime.fromtimestamp(job.deadline + self.timeout_s, tz=UTC) if job.deadline else None,
            ignore_result=True,
        )
        try:
            # Publishing is blocking socket I/O: keep it off the event loop.
            await loop.run_in_executor(None, send)
            return await waiter
        finally:
            self._waiting.pop(job.job_id, None)

    def deliver(self, job_id: str, result: dict[str, Any]) -> None:
        waiter = self._waiting.get(job_id)
        if waiter is not None and not waiter.done():
            waiter.set_result(AnalysisResult.from_dict(result))
