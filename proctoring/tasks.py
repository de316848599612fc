"""Celery tasks: thin. The frame arrives in the payload (through the broker), the same analyze_job() as the local
pool runs it, and the result goes back to the consumer's channel name through the channel layer."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from celery.signals import worker_process_init
from channels.layers import get_channel_layer
from django.conf import settings

from examsite.celery import app
from proctoring.pool.base import analyze_job, worker_process_start


@worker_process_init.connect
def _load_models(**_: Any) -> None:
    # Each prefork child loads the models once, before its first frame, and dies with the Celery master.
    worker_process_start(settings.MODEL_PACK, settings.INFERENCE_THREADS, nice=settings.INFERENCE_NICE)


@app.task(
    name="proctoring.tasks.analyze_frame",
    acks_late=True,
    # A child killed mid-frame: do not redeliver. The frame is stale by then; the consumer has already timed out
    # and counted it as a server error, and the student has sent newer frames.
    reject_on_worker_lost=False,
    ignore_result=True,
)
def analyze_frame(payload: dict[str, Any]) -> None:
    result = analyze_job(payload)
    reply = payload.get("reply_channel")
    if reply:
        _reply(reply, {"type": "proctor.result", "job_id": result["job_id"], "result": result})


_thread = threading.local()


def _reply(channel: str, message: dict[str, Any]) -> None:
    """Send on one event loop kept for the life of this worker thread (a prefork child has one). The Redis channel
    layer keeps its connections per event loop, and async_to_sync ran every result on a new loop in a new thread: a
    new connection to Redis for every frame, and its teardown (bench/celery_reply.py: 1.65-2.06 against 0.22 ms of
    CPU a result)."""
    loop = getattr(_thread, "loop", None)
    if loop is None or loop.is_closed():
        loop = _thread.loop = asyncio.new_event_loop()
    loop.run_until_complete(get_channel_layer().send(channel, message))
