"""Celery tasks: thin. The frame arrives in the payload (through the broker), the same analyze_job() as the local
pool runs it, and the result goes back to the consumer's channel name through the channel layer."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
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
        async_to_sync(get_channel_layer().send)(
            reply, {"type": "proctor.result", "job_id": result["job_id"], "result": result}
        )
