"""The live monitor with a full room: 200 simulated students, the instructor's page in Chromium.

    python bench/monitor.py [--students 200] [--duration 60] [--port 8107]
                            [--redis redis://127.0.0.1:6379/5] [--database-url postgres://postgres@127.0.0.1:5432/monitor_bench]

It measures what a full room costs the instructor's side, not the inference (bench/capacity.py does that):
1. seeds an exam with N enrolled students, their attempts and active proctoring sessions, and the instructor;
2. starts daphne with the Redis channel layer (what a deployment with more than one process runs);
3. publishes, for each student, the statuses their proctoring consumer sends to the exam's monitor group: an
   analysed frame every 2 s (attention, with a wobble of a few points, and the frame's conditions), a 160 px
   thumbnail every 10 s, and one 10 s episode a minute (a phone, looking away, a second person or an empty chair)
   whose alerts open a flag; a frame's status goes out only when the consumer's rule (MonitorChanges) says the tile
   would change, as in the consumer;
4. counts the monitor socket's messages and bytes per second with a plain WebSocket client (which never says which
   tiles it shows, so it gets every thumbnail), and opens the monitor page in Chromium, where the DevTools
   Performance metrics give the page's main-thread time per second (TaskDuration) and script time (ScriptDuration)
   over the measured window, and the page's own socket is counted the same way (it asks for the thumbnails of the
   tiles on screen only).

Writes bench/results/monitor.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "monitor.json"
INTERVAL_S = 2.0
THUMBNAIL_EVERY_S = 10.0
EPISODE_EVERY_S = 60.0
EPISODES = (("PHONE_DETECTED",), ("LOOKING_AWAY",), ("MULTIPLE_FACES",), ("FACE_NOT_FOUND",))


def seed(students: int) -> dict:
    from datetime import timedelta

    from django.test import Client
    from django.utils import timezone

    from accounts.models import User
    from exams.models import Attempt, Enrollment, Exam
    from proctoring.models import ProctoringSession

    owner, _ = User.objects.get_or_create(username="monitor_bench_owner", defaults={"role": User.Role.INSTRUCTOR})
    now = timezone.now()
    exam = Exam.objects.create(owner=owner, title=f"Monitor bench {now:%H%M%S}", opens_at=now - timedelta(hours=1),
                               closes_at=now + timedelta(hours=3), published=True, proctoring_enabled=True)  # fmt: skip
    seats = []
    for i in range(students):
        user, _ = User.objects.get_or_create(
            username=f"monitor_student_{i:03d}",
            defaults={"role": User.Role.STUDENT, "first_name": f"Student {i:03d}", "last_name": "Bench"},
        )
        Enrollment.objects.create(exam=exam, student=user)
        attempt = Attempt.objects.create(exam=exam, student=user, started_at=now, deadline=now + timedelta(hours=2))
        session = ProctoringSession.objects.create(attempt=attempt, started_at=now, last_frame_at=now)
        seats.append({"student_id": user.pk, "attempt_id": attempt.pk, "session_id": session.pk,
                      "student": user.get_full_name()})  # fmt: skip
    client = Client()
    client.force_login(owner)
    return {"exam": exam.pk, "cookie": client.cookies["sessionid"].value, "seats": seats}


def thumbnails() -> list[str]:
    """Real 160 px thumbnails of the evaluation photos, as the workers make them."""
    from bench import evalset
    from proctoring.pool.base import make_thumbnail

    if not evalset.is_fetched():
        evalset.fetch()
    return [
        make_thumbnail(evalset.webcam_frame(evalset.load(name))) for name in ("astronaut", "grace_hopper", "zidane")
    ]


async def publish(exam_id: int, seats: list[dict], thumbs: list[str], stop_at: float) -> int:
    """Every student's statuses at the consumer's rates, spread over the interval; returns how many were sent."""
    from channels.layers import get_channel_layer

    from proctoring.consumers import MonitorChanges, monitor_group

    layer = get_channel_layer()
    group = monitor_group(exam_id)
    sent = frames = 0
    flag_ids = iter(range(10_000_000, 20_000_000))

    async def student(index: int, seat: dict) -> None:
        nonlocal sent, frames
        await asyncio.sleep(index * INTERVAL_S / len(seats))
        start = time.time()
        told = MonitorChanges()
        wobble = random.Random(index)
        next_thumb = start + random.random() * THUMBNAIL_EVERY_S
        open_flags: list[dict] = []
        while time.time() < stop_at:
            now = time.time()
            phase = (now - start + index * 7.3) % EPISODE_EVERY_S
            episode = EPISODES[index % len(EPISODES)] if phase < 10.0 else ()
            score = max(0, min(100, round((30 if episode else 90) + wobble.gauss(0, 3))))
            status = {"type": "monitor.status", **seat, "connection": "connected", "at": now,
                      "attention": {"score": score, "label": "Away" if episode else "Focused"},
                      "conditions": ["AUTHORIZED", *episode]}  # fmt: skip
            if episode and 4.0 <= phase < 6.0:  # k of n frames into the episode: the flag opens
                flag = {"kind": episode[0].lower(), "event": episode[0], "flag_id": next(flag_ids), "at": now}
                open_flags = [*open_flags[-2:], flag]
                status["alerts"] = [{"event": episode[0], "at": now, "flag_id": flag["flag_id"]}]
                status["open_flags"] = open_flags
            if now >= next_thumb or "alerts" in status:
                status["thumbnail"] = thumbs[index % len(thumbs)]
                next_thumb = now + THUMBNAIL_EVERY_S
            frames += 1
            if told.worth_sending(score=score, label=status["attention"]["label"],
                                  conditions=tuple(status["conditions"]), alerts="alerts" in status,
                                  open_flags="open_flags" in status, thumbnail="thumbnail" in status):  # fmt: skip
                await layer.group_send(group, status)
                sent += 1
            await asyncio.sleep(INTERVAL_S)

    await asyncio.gather(*(student(i, seat) for i, seat in enumerate(seats)))
    return frames, sent


async def count_socket(port: int, exam_id: int, cookie: str, start_at: float, stop_at: float) -> dict:
    import websockets

    headers = {"Cookie": f"sessionid={cookie}", "Origin": f"http://127.0.0.1:{port}"}
    messages = nbytes = thumbnails = 0
    snapshot_bytes = 0
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/monitor/{exam_id}/", additional_headers=headers,
                                  max_size=2**24) as ws:  # fmt: skip
        snapshot_bytes = len(await ws.recv())
        while time.time() < stop_at:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=max(0.1, stop_at - time.time()))
            except TimeoutError:
                break
            if time.time() >= start_at:
                messages += 1
                nbytes += len(raw)
                thumbnails += '"thumbnail"' in raw
    window = stop_at - start_at
    return {"messages_per_s": round(messages / window, 1), "kbytes_per_s": round(nbytes / window / 1024, 1),
            "snapshot_kbytes": round(snapshot_bytes / 1024, 1),
            "thumbnails_per_s": round(thumbnails / window, 1)}  # fmt: skip


def browse(port: int, exam_id: int, cookie: str, start_at: float, stop_at: float, out: dict) -> None:
    """The instructor's page in Chromium: main-thread and script time per second over the window."""
    from playwright.sync_api import sync_playwright

    from tests.browser import launch

    with sync_playwright() as playwright:
        browser = launch(playwright)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_cookies([{"name": "sessionid", "value": cookie, "domain": "127.0.0.1", "path": "/"}])
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        received = {"messages": 0, "bytes": 0, "thumbnails": 0}

        def count(payload: str | bytes) -> None:
            if start_at <= time.time() < stop_at:
                received["messages"] += 1
                received["bytes"] += len(payload)
                received["thumbnails"] += isinstance(payload, str) and '"thumbnail"' in payload

        page.on("websocket", lambda ws: ws.on("framereceived", count))
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable")
        page.goto(f"http://127.0.0.1:{port}/review/exams/{exam_id}/monitor/")
        page.wait_for_selector("#monitor-tiles")

        def metrics() -> dict:
            return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}

        while time.time() < start_at:
            page.wait_for_timeout(200)
        first, t0 = metrics(), time.time()
        while time.time() < stop_at:
            page.wait_for_timeout(200)
        last, t1 = metrics(), time.time()
        window = t1 - t0
        on_screen = page.evaluate(
            "() => Array.from(document.querySelectorAll('#monitor-tiles > li')).filter((li) => {"
            " const r = li.getBoundingClientRect(); return r.bottom > 0 && r.top < window.innerHeight; }).length"
        )
        out.update({
            "main_thread_ms_per_s": round((last["TaskDuration"] - first["TaskDuration"]) * 1000 / window, 1),
            "script_ms_per_s": round((last["ScriptDuration"] - first["ScriptDuration"]) * 1000 / window, 1),
            "layout_ms_per_s": round((last["LayoutDuration"] - first["LayoutDuration"]) * 1000 / window, 1),
            "tiles": page.locator("#monitor-tiles > li").count(),
            "counts": page.inner_text("#monitor-counts") if page.locator("#monitor-counts").count() else None,
            "dom_nodes": int(last["Nodes"]),
            "js_heap_mb": round(last["JSHeapUsedSize"] / 2**20, 1),
            "page_errors": errors,
            "tiles_on_screen": on_screen,
            "socket_messages_per_s": round(received["messages"] / (stop_at - start_at), 1),
            "socket_kbytes_per_s": round(received["bytes"] / (stop_at - start_at) / 1024, 1),
            "socket_thumbnails_per_s": round(received["thumbnails"] / (stop_at - start_at), 1),
        })  # fmt: skip
        page.screenshot(path=str(ROOT / "test-artifacts" / "monitor-bench.png"))
        browser.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds (after 10 s of warm-up)")
    parser.add_argument("--port", type=int, default=8107)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/monitor_bench")
    args = parser.parse_args(argv)

    from bench.live import ensure_database, setup_django

    ensure_database(args.database_url)
    os.environ["REDIS_URL"] = args.redis
    setup_django(args.database_url)
    seeded = seed(args.students)
    thumbs = thumbnails()
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    env = {**os.environ, "DATABASE_URL": args.database_url, "REDIS_URL": args.redis, "INFERENCE_POOL": "local",
           "ALLOWED_HOSTS": "127.0.0.1,localhost", "LOG_LEVEL": "WARNING", "HOUSEKEEPING": "off"}  # fmt: skip
    server = subprocess.Popen([sys.executable, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", str(args.port),
                               "examsite.asgi:application"], cwd=ROOT, env=env)  # fmt: skip
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{args.port}/accounts/login/", timeout=2)
                break
            except Exception:  # noqa: BLE001 - still starting
                time.sleep(0.5)
        import psutil

        daphne = psutil.Process(server.pid)
        begin = time.time()
        start_at, stop_at = begin + 10.0, begin + 10.0 + args.duration
        page: dict = {}

        async def run() -> tuple[tuple[int, int], dict, dict]:
            cpu0 = None

            async def server_cpu() -> dict:
                nonlocal cpu0
                await asyncio.sleep(max(0.0, start_at - time.time()))
                cpu0 = daphne.cpu_times()
                await asyncio.sleep(max(0.0, stop_at - time.time()))
                cpu1 = daphne.cpu_times()
                used = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
                return {"server_cpu_pct": round(100 * used / args.duration, 1),
                        "server_rss_mb": round(daphne.memory_info().rss / 2**20, 1)}  # fmt: skip

            browser = asyncio.to_thread(browse, args.port, seeded["exam"], seeded["cookie"], start_at, stop_at, page)
            sent, socket, cpu, _ = await asyncio.gather(
                publish(seeded["exam"], seeded["seats"], thumbs, stop_at),
                count_socket(args.port, seeded["exam"], seeded["cookie"], start_at, stop_at),
                server_cpu(),
                browser,
            )
            return sent, socket, cpu

        sent, socket, cpu = asyncio.run(run())
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    result = {
        "students": args.students,
        "duration_s": args.duration,
        "frames_per_s": round(sent[0] / (stop_at - begin), 1),
        "statuses_published_per_s": round(sent[1] / (stop_at - begin), 1),
        "monitor_socket": socket,
        "page": page,
        "server": cpu,
        "meta": {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
            "command": "python bench/monitor.py " + " ".join(argv),
            "load_average_at_end": os.getloadavg(),
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if RESULTS.exists() and "before" in (previous := json.loads(RESULTS.read_text())):
        result["before"] = previous["before"]  # the page as it stood before the roster, kept for comparison
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
