"""The consumer with each real back end (spawned local workers; a Celery worker with results over a Redis channel
layer): a worker killed mid-frame costs one frame, reported as a server error; the session goes on and nothing
stored before is lost."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
from asgiref.sync import sync_to_async

from proctoring import pool as pool_module
from proctoring.models import Flag, Observation, ProctoringSession
from tests.proctoring.fakes import frame
from tests.proctoring.test_consumer import ANALYSED, alice, join, names, show, sitting, until  # noqa: F401
from tests.proctoring.test_pool import REDIS_URL, SCRIPTED, start_backend, stop_backend

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.timeout(300)]


async def drain(socket, seconds: float) -> list[dict]:
    """Events that arrive within `seconds` (polling without a receive timeout, which would cancel the app)."""
    events, deadline = [], asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if not await socket.receive_nothing(timeout=0.05, interval=0.01):
            events.append(await socket.receive_json_from())
    return events


@pytest.fixture(params=["local", "celery"])
def backend(request, settings, tmp_path):
    settings.PRIVATE_STORAGE_DIR = tmp_path / "private"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    if request.param == "celery":
        # Results come back to the consumer's channel name, so the channel layer must be one the worker reaches.
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}]},
            }
        }
    backend = start_backend(request.param, SCRIPTED, timeout_s=120.0)
    try:
        from tests.proctoring.test_pool import job

        asyncio.run(backend.run(job(frame("alice"))))
        backend.pool.timeout_s = 4.0
        previous = pool_module.set_pool(backend.pool)
        yield backend
        pool_module.set_pool(previous)
    finally:
        stop_backend(backend)


async def test_a_worker_killed_mid_frame_costs_one_frame_and_the_session_goes_on(backend, alice):  # noqa: F811
    attempt = await sync_to_async(sitting)(alice)
    socket, ready = await join(alice, attempt.pk)
    assert "AUTHORIZED" in names(await show(socket, "alice"))
    await show(socket, "nobody")

    pids = backend.worker_pids()
    await socket.send_to(bytes_data=frame("slow"))
    await until(socket, {"FRAME_ACK"})
    await asyncio.sleep(0.4)  # the slow frame is in a worker now
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    lost = await until(socket, ANALYSED, timeout=10)
    assert lost[-1]["event"] == "ERROR" and "Nothing is counted against you" in lost[-1]["message"]

    # The pool replaces the worker. Until its models are loaded, frames are shed (OVERLOADED, within the cooldown
    # silently); then the student's frames are analysed again.
    events: list[dict] = []
    for _ in range(60):
        await socket.send_to(bytes_data=frame("alice"))
        events = await drain(socket, 1.0)
        if "ATTENTION_UPDATE" in names(events):
            break
    update = [e for e in events if e["event"] == "ATTENTION_UPDATE"][-1]
    # The mean over the window still holds the empty frame from before the kill: the state was not lost.
    assert 50 < update["score"] < 100
    await socket.disconnect()

    session = await sync_to_async(ProctoringSession.objects.get)(pk=ready["session_id"])
    assert session.status == "active" and session.server_errors >= 1
    seqs = await sync_to_async(
        lambda: list(Observation.objects.filter(session=session).values_list("seq", flat=True))
    )()
    assert seqs[:2] == [1, 2] and 3 not in seqs
    assert session.state["windows"]["face_not_found"][:2] == [0, 1]
    assert await sync_to_async(Flag.objects.count)() == 0
