"""Live proctoring under load: real frames over real WebSockets against a running daphne server.

    python bench/evalset.py fetch
    python bench/live.py [--pools local,celery] [--students 1,20] [--duration 60] [--port 8104]
                         [--redis redis://127.0.0.1:6379/4] [--database-url postgres://postgres@127.0.0.1:5432/live_bench]

For each pool and each number of students it:
1. seeds an exam, the students (enrolled with the real default pack from the astronaut photo) and their attempts;
2. starts daphne (and, for `celery`, a Celery inference worker: prefork, one child, prefetch 1) as subprocesses;
3. warms the models up (not measured), then streams one 640x480 JPEG every frame interval (2 s) per student,
   paced by the protocol (next frame only after the FRAME_ACK), cycling through the evaluation set's photos;
4. measures frame-to-event latency (frame sent -> its ATTENTION_UPDATE, matched by seq), frames without an answer
   (dropped by latest-frame-wins or shed), OVERLOADED/ERROR events, the server's own counters from the database, the
   CPU of the inference workers and of the server, memory over time, and for Celery the broker queue length.

Writes bench/results/live.json: {"<pool>": {"students_<n>": {"p50_ms", "p95_ms", "dropped", ...}}, "meta": {...}}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import deque
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "live.json"
FRAME_SOURCES = ("astronaut", "astronaut", "astronaut", "grace_hopper", "astronaut", "zidane", "phone_on_couch")
RESULT_EVENTS = {"ATTENTION_UPDATE", "FRAME_REJECTED", "ERROR", "OVERLOADED"}


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))], 1)


# --- Set-up ----------------------------------------------------------------------------------------------------


def ensure_database(url: str) -> None:
    if not url.startswith("postgres"):
        return
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examsite.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def frames() -> list[bytes]:
    import cv2

    from bench import evalset

    if not evalset.is_fetched():
        evalset.fetch()
    out = []
    for name in FRAME_SOURCES:
        ok, data = cv2.imencode(".jpg", evalset.webcam_frame(evalset.load(name)), [cv2.IMWRITE_JPEG_QUALITY, 80])
        out.append(data.tobytes())
    return out


def enrolment() -> dict:
    """The astronaut's real enrolment with the default pack (computed once, here, before any server starts)."""
    import numpy as np

    from bench import evalset
    from proctoring.services.enrolment import enrolment_check_frame
    from proctoring.vision.pipeline import get_analyzer

    analyzer = get_analyzer("default", threads=1)
    check = enrolment_check_frame(image=evalset.webcam_frame(evalset.load("astronaut")), analyzer=analyzer)
    assert check.ok, check
    return {
        "pack": analyzer.embedding_pack,
        "model_id": analyzer.embedding_model_id,
        "embedding": np.asarray(check.embedding, "<f4").tobytes(),
        "dim": len(check.embedding),
        "neutral_yaw": check.pose.yaw,
        "neutral_pitch": check.pose.pitch,
        "neutral_roll": check.pose.roll,
    }


def seed(students: int, enrolled: dict, tag: str, proctoring_settings: dict | None = None) -> list[tuple[int, str]]:
    """A fresh exam with `students` enrolled students and open attempts; returns (attempt id, session cookie)."""
    from datetime import timedelta

    from django.test import Client
    from django.utils import timezone

    from accounts.models import User
    from exams.models import Attempt, Enrollment, Exam
    from proctoring.models import FaceTemplate

    owner, _ = User.objects.get_or_create(username="bench_owner", defaults={"role": User.Role.INSTRUCTOR})
    now = timezone.now()
    exam = Exam.objects.create(
        owner=owner,
        title=f"Live bench {tag}",
        opens_at=now - timedelta(hours=1),
        closes_at=now + timedelta(hours=3),
        published=True,
        proctoring_enabled=True,
        proctoring_settings=proctoring_settings or {},
    )
    out = []
    for i in range(students):
        user, _ = User.objects.get_or_create(username=f"bench_student_{i}", defaults={"role": User.Role.STUDENT})
        FaceTemplate.objects.update_or_create(user=user, defaults=enrolled)
        Enrollment.objects.create(exam=exam, student=user)
        Attempt.objects.filter(student=user, status=Attempt.Status.IN_PROGRESS).update(status=Attempt.Status.EXPIRED)
        attempt = Attempt.objects.create(exam=exam, student=user, started_at=now, deadline=now + timedelta(hours=2))
        client = Client()
        client.force_login(user)
        out.append((attempt.pk, client.cookies["sessionid"].value))
    return out


def server_counters(attempt_ids: list[int]) -> dict:
    from django.db.models import Sum

    from proctoring.models import Flag, ProctoringSession

    sessions = ProctoringSession.objects.filter(attempt_id__in=attempt_ids)
    # Shed frames (OVERLOADED) are capacity, not failures: counted apart from server errors.
    totals = sessions.aggregate(
        analysed=Sum("frames_analysed"),
        dropped=Sum("frames_dropped"),
        shed=Sum("frames_shed"),
        server_errors=Sum("server_errors"),
    )
    totals["flags"] = Flag.objects.filter(session__in=sessions).count()
    return {k: v or 0 for k, v in totals.items()}


# --- Processes -------------------------------------------------------------------------------------------------


class Processes:
    def __init__(
        self,
        *,
        pool: str,
        port: int,
        redis: str,
        database_url: str,
        workers: int | None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        # workers=None leaves INFERENCE_WORKERS (and INFERENCE_THREADS) to the server's own defaults, which are
        # derived from the machine's cores: what a plain deployment gets.
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "INFERENCE_POOL": pool,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_LEVEL": "WARNING",
            **(extra_env or {}),
        }
        if workers is not None:
            self.env["INFERENCE_WORKERS"] = str(workers)
            self.env.setdefault("INFERENCE_THREADS", "1")
        workers = workers or os.cpu_count() or 1
        if pool == "celery":
            self.env["REDIS_URL"] = redis
        else:
            self.env.pop("REDIS_URL", None)
        if "INFERENCE_ANALYZER" not in (extra_env or {}):
            # Real models unless the command asks otherwise (bench/slowbox.py): never one inherited from a test run.
            self.env.pop("INFERENCE_ANALYZER", None)
        self.port = port
        self.server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-v",
                "0",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "examsite.asgi:application",
            ],
            cwd=ROOT,
            env=self.env,
        )
        self.worker = None
        if pool == "celery":
            self.worker = subprocess.Popen(
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
                    str(workers),
                    "--prefetch-multiplier",
                    "1",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-n",
                    f"bench-{port}@%h",
                    "--loglevel",
                    "WARNING",
                ],
                cwd=ROOT,
                env=self.env,
            )
        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=2)
                break
            except Exception:  # noqa: BLE001 - still starting
                time.sleep(0.5)
        else:
            raise RuntimeError("daphne did not start")

    def worker_processes(self) -> list:
        import psutil

        if self.worker is not None:
            main = psutil.Process(self.worker.pid)
            return [main, *main.children(recursive=True)]
        return psutil.Process(self.server.pid).children(recursive=True)

    def stop(self) -> None:
        for process in (self.worker, self.server):
            if process is not None:
                process.send_signal(signal.SIGTERM)
        for process in (self.worker, self.server):
            if process is not None:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()


class Sampler:
    """CPU and memory of the server and of the inference workers every `every` seconds."""

    def __init__(self, processes: Processes, *, redis: str | None, every: float = 5.0) -> None:
        import psutil

        self.processes, self.every, self.samples = processes, every, []
        self.server = psutil.Process(processes.server.pid)
        self.redis = None
        if redis:
            import redis as redis_lib

            self.redis = redis_lib.Redis.from_url(redis)
        self._cpu: dict[int, float] = {}

    def _cpu_seconds(self, process) -> float:
        try:
            times = process.cpu_times()
            return times.user + times.system
        except Exception:  # noqa: BLE001 - a worker that just exited
            return 0.0

    def _rss(self, process) -> float:
        try:
            return process.memory_info().rss / 2**20
        except Exception:  # noqa: BLE001
            return 0.0

    async def run(self, stop: asyncio.Event) -> None:
        started = time.monotonic()
        last_t = started
        workers = self.processes.worker_processes()
        last_server = self._cpu_seconds(self.server)
        last_workers = sum(self._cpu_seconds(p) for p in workers)
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.every)
            except TimeoutError:
                pass
            now = time.monotonic()
            workers = self.processes.worker_processes()
            server_cpu = self._cpu_seconds(self.server)
            workers_cpu = sum(self._cpu_seconds(p) for p in workers)
            span = max(now - last_t, 1e-6)
            sample = {
                "t_s": round(now - started, 1),
                "server_cpu_pct": round(100 * (server_cpu - last_server) / span, 1),
                # Workers that were replaced lose their CPU time; clamp so a respawn never shows negative load.
                "workers_cpu_pct": round(max(0.0, 100 * (workers_cpu - last_workers) / span), 1),
                "server_rss_mb": round(self._rss(self.server), 1),
                "workers_rss_mb": round(sum(self._rss(p) for p in workers), 1),
            }
            if self.redis is not None:
                sample["broker_queue"] = int(self.redis.llen("inference"))
            self.samples.append(sample)
            last_t, last_server, last_workers = now, server_cpu, workers_cpu


# --- Students --------------------------------------------------------------------------------------------------


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.sent = 0
        self.events: dict[str, int] = {}
        self.unanswered = 0


async def student(
    port: int, attempt_id: int, cookie: str, images: list[bytes], stop_at: float, offset: float, stats: Stats
) -> None:
    import websockets

    url = f"ws://127.0.0.1:{port}/ws/proctor/{attempt_id}/"
    headers = {"Cookie": f"sessionid={cookie}", "Origin": f"http://127.0.0.1:{port}"}
    async with websockets.connect(url, additional_headers=headers, max_size=2**20) as ws:
        ready = json.loads(await ws.recv())
        assert ready["event"] == "READY", ready
        interval = ready["frame_interval_ms"] / 1000.0
        pending: deque[float] = deque()  # send times awaiting their FRAME_ACK
        sent_at: dict[int, float] = {}
        acked = asyncio.Event()

        async def read() -> None:
            async for raw in ws:
                event = json.loads(raw)
                name = event["event"]
                now = time.perf_counter()
                if name == "FRAME_ACK":
                    sent_at[event["seq"]] = pending.popleft()
                    acked.set()
                    continue
                stats.events[name] = stats.events.get(name, 0) + 1
                if name in RESULT_EVENTS and "seq" in event and event["seq"] in sent_at:
                    started = sent_at.pop(event["seq"])
                    if name == "ATTENTION_UPDATE":
                        stats.latencies.append((now - started) * 1000)
                    # Frames older than the one just answered were dropped (latest-frame-wins) or shed.
                    for older in [s for s in sent_at if s < event["seq"]]:
                        del sent_at[older]
                        stats.unanswered += 1

        reader = asyncio.create_task(read())
        await asyncio.sleep(offset)
        next_at = time.perf_counter()
        k = 0
        while time.perf_counter() < stop_at:
            acked.clear()
            pending.append(time.perf_counter())
            await ws.send(images[k % len(images)])
            stats.sent += 1
            k += 1
            # The protocol: the next frame only after the ACK, and no sooner than one interval after this one.
            await asyncio.wait_for(acked.wait(), timeout=30)
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        await asyncio.sleep(min(3.0, interval * 1.5))  # answers for the last frames
        stats.unanswered += len(sent_at)
        reader.cancel()
        await ws.send(json.dumps({"type": "end"}))


async def warm_up(port: int, attempt_id: int, cookie: str, image: bytes, timeout: float = 240.0) -> float:
    """Stream until the first ATTENTION_UPDATE: models loaded in every path. Returns the seconds it took."""
    import websockets

    started = time.monotonic()
    url = f"ws://127.0.0.1:{port}/ws/proctor/{attempt_id}/"
    headers = {"Cookie": f"sessionid={cookie}", "Origin": f"http://127.0.0.1:{port}"}
    async with websockets.connect(url, additional_headers=headers, max_size=2**20) as ws:
        await ws.recv()
        while time.monotonic() - started < timeout:
            await ws.send(image)
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                try:
                    event = json.loads(
                        await asyncio.wait_for(ws.recv(), timeout=max(0.01, deadline - time.monotonic()))
                    )
                except TimeoutError:
                    break
                if event["event"] == "ATTENTION_UPDATE":
                    return time.monotonic() - started
    raise RuntimeError("the models never warmed up")


async def scenario(pool: str, students: int, args, images: list[bytes], enrolled: dict) -> dict:
    from asgiref.sync import sync_to_async

    tag = f"{pool}-{students}-{int(time.time())}"
    seats = await sync_to_async(seed)(students + 1, enrolled, tag)
    warm_seat, seats = seats[0], seats[1:]
    processes = Processes(
        pool=pool, port=args.port, redis=args.redis, database_url=args.database_url, workers=args.workers
    )
    try:
        warm_s = await warm_up(args.port, warm_seat[0], warm_seat[1], images[0])
        sampler = Sampler(processes, redis=args.redis if pool == "celery" else None)
        stop = asyncio.Event()
        sampling = asyncio.create_task(sampler.run(stop))
        stats = Stats()
        stop_at = time.perf_counter() + args.duration
        interval = 2.0
        await asyncio.gather(
            *(
                student(args.port, attempt_id, cookie, images, stop_at, offset=i * interval / students, stats=stats)
                for i, (attempt_id, cookie) in enumerate(seats)
            )
        )
        stop.set()
        await sampling
    finally:
        processes.stop()
    counters = await sync_to_async(server_counters)([a for a, _ in seats])
    samples = sampler.samples
    steady = samples[1:] or samples
    result = {
        "p50_ms": pct(stats.latencies, 50),
        "p95_ms": pct(stats.latencies, 95),
        "max_ms": round(max(stats.latencies), 1) if stats.latencies else None,
        "mean_ms": round(statistics.fmean(stats.latencies), 1) if stats.latencies else None,
        "dropped": stats.unanswered,
        "frames_sent": stats.sent,
        "frames_answered": len(stats.latencies),
        "events": dict(sorted(stats.events.items())),
        "server": counters,
        "workers_cpu_pct_mean": round(statistics.fmean(s["workers_cpu_pct"] for s in steady), 1) if steady else None,
        "server_cpu_pct_mean": round(statistics.fmean(s["server_cpu_pct"] for s in steady), 1) if steady else None,
        "workers_rss_mb": [steady[0]["workers_rss_mb"], steady[-1]["workers_rss_mb"]] if steady else None,
        "server_rss_mb": [steady[0]["server_rss_mb"], steady[-1]["server_rss_mb"]] if steady else None,
        "warm_up_s": round(warm_s, 1),
        "duration_s": args.duration,
        "samples": samples,
    }
    if pool == "celery":
        result["broker_queue_max"] = max((s.get("broker_queue", 0) for s in samples), default=0)
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pools", default="local,celery")
    parser.add_argument("--students", default="1,20")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of streaming per scenario")
    parser.add_argument("--port", type=int, default=8104)
    parser.add_argument("--workers", type=int, default=1, help="inference worker processes (2 cores: 1)")
    parser.add_argument("--redis", default=os.getenv("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4"))
    parser.add_argument(
        "--database-url", default=os.getenv("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/live_bench")
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    ensure_database(args.database_url)
    setup_django(args.database_url)
    random.seed(0)
    images = frames()
    enrolled = enrolment()
    results = json.loads(args.output.read_text()) if args.output.exists() else {}
    for pool in args.pools.split(","):
        for students in (int(n) for n in args.students.split(",")):
            print(f"==> {pool}, {students} student(s), {args.duration:.0f} s", flush=True)
            result = asyncio.run(scenario(pool, students, args, images, enrolled))
            results.setdefault(pool, {})[f"students_{students}"] = result
            brief = {k: result[k] for k in ("p50_ms", "p95_ms", "dropped", "frames_sent", "workers_cpu_pct_mean")}
            print(f"    {brief}", flush=True)
            results["meta"] = {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
                "frame_interval_ms": 2000,
                "frames": list(FRAME_SOURCES),
                "workers": args.workers,
                "load_average_at_end": os.getloadavg(),
                "command": "python bench/live.py " + " ".join(argv),
            }
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
