"""Both inference back ends behind one interface, with the same tests: real worker processes (spawned), a real
Celery worker subprocess against Redis, the scripted analyzer for wiring, and the real default model pack.

Redis: TEST_REDIS_URL (default redis://127.0.0.1:6379/15). Without Redis the Celery half skips (fails under
REQUIRE_SERVICES=1, as in CI).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import cv2
import numpy as np
import psutil
import pytest
from django.conf import settings

from proctoring.pool.base import ERROR, EXPIRED, OK, REJECTED, TIMEOUT, FrameJob
from proctoring.pool.celery_backend import CeleryPool
from proctoring.pool.local import LocalPool
from proctoring.vision.types import EnrolledFace, Pose
from tests.conftest import service_missing
from tests.proctoring.fakes import frame

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.getenv("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SCRIPTED = "tests.proctoring.fakes:scripted_analyzer"
ENROLLED = EnrolledFace(embedding=(1.0, 0.0), pack="default", model_id="scripted", neutral=Pose(0.0, 0.0, 0.0))

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def job(data: bytes, *, enrolled: EnrolledFace | None = ENROLLED, deadline_in: float = 60.0, **kw) -> FrameJob:
    return FrameJob(
        job_id=uuid.uuid4().hex,
        session_id=1,
        seq=1,
        frame=data,
        enrolled=enrolled,
        deadline=time.time() + deadline_in,
        **kw,
    )


def redis_or_skip() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:  # noqa: BLE001
        service_missing(f"Redis is not reachable at {REDIS_URL} ({exc})")


class CeleryWorker:
    """A real `celery worker` subprocess on the inference queue: prefork, one child, prefetch 1."""

    def __init__(self, analyzer: str | None) -> None:
        env = {**os.environ, "REDIS_URL": REDIS_URL, "DJANGO_SETTINGS_MODULE": "examsite.settings"}
        # The worker's log, printed by pytest when a test fails (a worker that cannot start says why there).
        self.log = tempfile.TemporaryFile()
        env.pop("INFERENCE_ANALYZER", None)
        if analyzer:
            env["INFERENCE_ANALYZER"] = analyzer
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "examsite",
                "worker",
                "-Q",
                "inference",
                "--pool",
                "prefork",
                "--concurrency",
                "1",
                "--prefetch-multiplier",
                "1",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"test-{uuid.uuid4().hex[:8]}@%h",
                "--loglevel",
                "WARNING",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )

    def children(self) -> list[int]:
        return [p.pid for p in psutil.Process(self.process.pid).children(recursive=True)]

    def log_tail(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        print("celery worker log:\n" + self.log_tail())


class Backend:
    """What a test needs of a back end: the pool, a way to run a job as the consumer does, and its workers."""

    def __init__(self, name: str, pool, worker: CeleryWorker | None = None) -> None:
        self.name, self.pool, self.worker = name, pool, worker

    def worker_pids(self) -> list[int]:
        return self.worker.children() if self.worker else self.pool.worker_pids()

    async def run(self, *jobs: FrameJob):
        """Run jobs concurrently; for Celery, results come back through a real Redis channel layer."""
        if self.worker is None:
            return await asyncio.gather(*(self.pool.analyze(j) for j in jobs))
        from channels_redis.core import RedisChannelLayer

        layer = RedisChannelLayer(hosts=[{"address": REDIS_URL, "socket_timeout": 30}])
        channel = await layer.new_channel()

        async def relay():
            while True:
                message = await layer.receive(channel)
                self.pool.deliver(message["job_id"], message["result"])

        relaying = asyncio.create_task(relay())
        try:
            return await asyncio.gather(*(self.pool.analyze(j, reply_channel=channel) for j in jobs))
        finally:
            relaying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relaying
            await layer.flush()


def start_backend(name: str, analyzer: str | None, *, timeout_s: float = 60.0) -> Backend:
    if name == "local":
        pool = LocalPool(workers=1, threads=1, pack=settings.MODEL_PACK, timeout_s=timeout_s, analyzer_path=analyzer,
                         nice=settings.INFERENCE_NICE)  # fmt: skip
        pool.start()
        return Backend(name, pool)
    redis_or_skip()
    from celery import Celery

    app = Celery("test-client", broker=REDIS_URL)
    app.conf.broker_connection_retry_on_startup = True
    return Backend(name, CeleryPool(timeout_s=timeout_s, app=app), CeleryWorker(analyzer))


def stop_backend(backend: Backend) -> None:
    backend.pool.close()
    if backend.worker:
        backend.worker.stop()


@pytest.fixture(scope="module", params=["local", "celery"])
def scripted(request):
    backend = start_backend(request.param, SCRIPTED)
    try:
        # The first frame through Celery waits for the worker to boot (Django setup, connect to Redis).
        asyncio.run(backend.run(job(frame("alice"))))
        yield backend
    finally:
        stop_backend(backend)


# --- Wiring, with the scripted analyzer ------------------------------------------------------------------------


async def test_a_frame_comes_back_as_an_observation(scripted):
    [result] = await scripted.run(job(frame("alice"), want_thumbnail=True))
    assert result.status == OK, result
    assert result.observation["identity"]["match"] is True
    assert len(result.observation["faces"]) == 1
    thumbnail = cv2.imdecode(np.frombuffer(__import__("base64").b64decode(result.thumbnail_b64), np.uint8), 1)
    assert thumbnail.shape[1] == 160


async def test_without_the_enrolled_face_no_identity_is_computed(scripted):
    [result] = await scripted.run(job(frame("alice"), enrolled=None))
    assert result.status == OK and result.observation["identity"] is None


async def test_a_corrupt_frame_comes_back_rejected_with_its_reason(scripted):
    [result] = await scripted.run(job(b"\xff\xd8\xff" + b"\x00" * 100))
    assert (result.status, result.reason) == (REJECTED, "corrupt")


async def test_a_stale_frame_is_skipped_not_analysed(scripted):
    # A student served a moment ago (a frame of one never served, or served 5 s ago, is analysed late rather than
    # skipped: tests/proctoring/test_pushback.py).
    [result] = await scripted.run(job(frame("alice"), deadline_in=-1.0, priority=time.time()))
    assert result.status == EXPIRED


async def test_models_load_once_per_worker_and_stay_loaded(scripted):
    results = await scripted.run(job(frame("alice")))
    results += await scripted.run(job(frame("nobody")))
    assert len({r.worker for r in results}) == 1


def test_the_workers_run_below_the_servers_cpu_priority(scripted):
    # settings.INFERENCE_NICE: the serving path gets a core first (a connect burst while the models load lost
    # handshakes at equal priority), the models take what it leaves.
    assert settings.INFERENCE_NICE == 10
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    assert {os.getpriority(os.PRIO_PROCESS, pid) for pid in scripted.worker_pids()} == {min(19, ours + 10)}


async def test_a_model_failure_is_a_server_error(scripted):
    [result] = await scripted.run(job(frame("crash")))
    assert result.status == ERROR and "scripted analyzer failure" in result.message


async def test_a_worker_killed_mid_frame_is_a_server_error_and_the_pool_recovers(scripted):
    scripted.pool.timeout_s = 4.0
    try:
        pids = scripted.worker_pids()
        assert pids

        async def kill_soon():
            await asyncio.sleep(0.4)  # the slow frame is being analysed now
            for pid in pids:
                os.kill(pid, signal.SIGKILL)

        killer = asyncio.create_task(kill_soon())
        [lost] = await scripted.run(job(frame("slow")))
        await killer
        # Local: the broken executor is noticed at once; Celery: no answer, so the wait times out. Either way it is
        # reported as the server's failure, never as anything about the student.
        assert lost.status in (ERROR, TIMEOUT)
        scripted.pool.timeout_s = 60.0
        # The replacement worker loads its models first; frames meanwhile are shed (EXPIRED), never queued.
        for _ in range(60):
            [after] = await scripted.run(job(frame("alice")))
            if after.status != EXPIRED:
                break
            await asyncio.sleep(0.5)
        assert after.status == OK
        assert set(scripted.worker_pids()).isdisjoint(pids)
    finally:
        scripted.pool.timeout_s = 60.0


# --- Workers die with their parent ----------------------------------------------------------------------------------

LOCAL_PARENT = """
import sys, time
from proctoring.pool.local import LocalPool
pool = LocalPool(workers=2, analyzer_path=sys.argv[1])
pool.start()
print(" ".join(map(str, pool.worker_pids())), flush=True)
time.sleep(600)
"""


def gone_within(pids: list[int], seconds: float) -> list[int]:
    """The pids still alive (and not zombies) after waiting up to `seconds` for all of them to exit."""
    end = time.monotonic() + seconds
    alive = pids
    while time.monotonic() < end:
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return []
        time.sleep(0.2)
    return alive


def test_kill_9_of_the_server_takes_its_inference_workers_with_it():
    # kill -9 of daphne used to leave its workers running as orphans, about 350 MB each, for minutes or for ever.
    parent = subprocess.Popen(
        [sys.executable, "-c", LOCAL_PARENT, SCRIPTED], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    pids: list[int] = []
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2 and all(psutil.pid_exists(p) for p in pids)
        parent.kill()
        parent.wait()
        assert gone_within(pids, 5.0) == []
    finally:
        parent.kill()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_kill_9_of_the_celery_master_takes_its_prefork_children_with_it():
    redis_or_skip()
    worker = CeleryWorker(SCRIPTED)
    pids: list[int] = []
    try:
        end = time.monotonic() + 60
        while not worker.children() and time.monotonic() < end:
            time.sleep(0.2)
        time.sleep(1.0)  # the child has run worker_process_init
        pids = worker.children()
        assert pids, worker.log_tail()
        worker.process.kill()
        worker.process.wait()
        assert gone_within(pids, 5.0) == [], worker.log_tail()
    finally:
        worker.process.kill()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


CTRL_C = """
import os, signal, sys, time
from proctoring.pool.local import LocalPool

if __name__ == "__main__":
    pool = LocalPool(workers=2, analyzer_path=sys.argv[1])
    pool.start()  # ready once a worker answers: the other may still be importing
    import atexit
    atexit.register(pool.close)  # what proctoring.pool.get_pool registers
    signal.signal(signal.SIGINT, lambda *a: sys.exit(0))  # daphne's reactor stops on SIGINT and returns
    print(" ".join(map(str, pool.worker_pids())), flush=True)
    os.killpg(os.getpgrp(), signal.SIGINT)  # Ctrl-C reaches the terminal's whole process group
    time.sleep(5)
"""


def test_ctrl_c_stops_the_server_and_its_workers_without_a_traceback(tmp_path):
    # `make demo` stopped with a KeyboardInterrupt traceback from every worker, and one from the executor's
    # callbacks at interpreter teardown.
    script = tmp_path / "serve.py"
    script.write_text(CTRL_C)
    done = subprocess.run(
        [sys.executable, str(script), SCRIPTED],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,
    )
    pids = [int(p) for p in done.stdout.split()]
    assert done.returncode == 0 and len(pids) == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert gone_within(pids, 5.0) == []
