"""Capacity of one box: ramp simulated students against daphne on PostgreSQL and find the knee.

    python bench/evalset.py fetch
    python bench/capacity.py [--students 25,50,75,100,150,200,300] [--duration 120] [--pool local]
                             [--workers N] [--label NAME] [--env KEY=VALUE ...]

For each step of N students it:
1. seeds an exam with N students, each enrolled with the real default pack (the astronaut photo), and their attempts;
2. starts daphne (and, for `--pool celery`, one Celery inference worker box simulated on this machine);
3. warms the models up (not measured);
4. starts the load generator in its own process (`--client`): N real WebSocket clients, each sending one 640x480
   JPEG per frame interval (2 s unless the server paces it), following the protocol (READY's start_within_ms,
   FRAME_ACK, PACE). Each student behaves like a person: mostly the enrolled face, with camera noise and small
   movements on every frame, and one 10-second episode a minute of being away, a phone, a second person or someone
   else, so that flags open and snapshots are written under load;
5. samples CPU by role (inference workers, server, PostgreSQL, load generator) and RSS every 5 s.

Per step it writes p50/p95/max frame-to-event, the share of frames answered, the longest gap between two results
for any student, OVERLOADED/ERROR/PACE counts, CPU by role, server RSS per connected student and worker RSS, the
server's own counters from the database, and the sheds and the p95 of each 10 s (a room's connect burst apart from
its steady state). The knee is the largest N with p95 <= 1 s, >= 99% of frames answered, no
ERROR events, every student at the exam's own interval (no push-back) and server memory flat; it is written as
"knee" at the top level of bench/results/capacity.json (for the local pool; "knee_<pool>" otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "capacity.json"
BASE_INTERVAL_S = 2.0
# A minute in the life of a simulated student: the enrolled face, then one 10-second episode, then the face again.
EPISODE_EVERY_S = 60.0
EPISODE_S = 10.0
EPISODES = ("away", "phone", "second_person", "someone_else")
SOURCES = {"face": "astronaut", "away": "coffee", "phone": "phone_on_couch", "second_person": "zidane",
           "someone_else": "grace_hopper"}  # fmt: skip
VARIANTS = 12  # per source: camera noise and a small shift, so no two consecutive frames are identical
RESULT_EVENTS = {"ATTENTION_UPDATE", "FRAME_REJECTED", "ERROR", "OVERLOADED"}
# Knee criteria (issue 8).
KNEE_P95_MS = 1000.0
KNEE_ANSWERED = 0.99
KNEE_PACED = 0.97  # frames sent / frames a student at the exam's own interval would send
KNEE_RSS_GROWTH_MB = 25.0


def answered_between(students: list[Student], start: float, end: float) -> list[float]:
    """Frame-to-event times (ms) of the results that arrived in [start, end) (a student's result_times[0] is the
    connect, each later one pairs with a latency)."""
    return [ms for s in students for ms, t in zip(s.latencies, s.result_times[1:], strict=False) if start <= t < end]


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))], 1)


# --- Frames ------------------------------------------------------------------------------------------------------


def frame_variants(seed: int = 0) -> dict[str, list[bytes]]:
    """JPEG variants of each source, as a webcam sends them: sensor noise and a shift of a few pixels."""
    import cv2
    import numpy as np

    from bench import evalset

    if not evalset.is_fetched():
        evalset.fetch()
    rng = np.random.default_rng(seed)
    out: dict[str, list[bytes]] = {}
    for kind, name in SOURCES.items():
        base = evalset.webcam_frame(evalset.load(name)).astype(np.int16)
        out[kind] = []
        for _ in range(VARIANTS):
            dx, dy = (int(v) for v in rng.integers(-4, 5, size=2))
            moved = np.roll(base, (dy, dx), axis=(0, 1))
            noisy = np.clip(moved + rng.normal(0, 3.0, moved.shape), 0, 255).astype(np.uint8)
            ok, data = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 80])
            out[kind].append(data.tobytes())
    return out


# --- The load generator (its own process) -------------------------------------------------------------------------


class Student:
    def __init__(self, index: int, attempt_id: int, cookie: str) -> None:
        self.index, self.attempt_id, self.cookie = index, attempt_id, cookie
        self.latencies: list[float] = []
        self.sent = 0
        self.answered = 0
        self.unanswered = 0
        self.events: dict[str, int] = {}
        self.result_times: list[float] = []
        self.intervals: list[int] = []
        self.shed_times: list[float] = []
        self.connected = False
        self.error: str | None = None


def behaviour(student: Student, t: float) -> str:
    """What this student's camera shows at t seconds into the run: mostly the face, one episode a minute."""
    phase = (t + student.index * 7.3) % EPISODE_EVERY_S
    if EPISODE_EVERY_S - 20.0 <= phase < EPISODE_EVERY_S - 20.0 + EPISODE_S:
        return EPISODES[student.index % len(EPISODES)]
    return "face"


async def run_student(port: int, student: Student, frames: dict[str, list[bytes]], t0: float, stop_at: float,
                      offset: float) -> None:  # fmt: skip
    import websockets

    url = f"ws://127.0.0.1:{port}/ws/proctor/{student.attempt_id}/"
    headers = {"Cookie": f"sessionid={student.cookie}", "Origin": f"http://127.0.0.1:{port}"}
    await asyncio.sleep(offset)
    try:
        async with websockets.connect(url, additional_headers=headers, max_size=2**20, open_timeout=60) as ws:
            ready = json.loads(await ws.recv())
            if ready.get("event") != "READY":
                student.error = f"refused: {ready}"
                return
            student.connected = True
            interval = [ready["frame_interval_ms"] / 1000.0]
            # PACE moves the next frame, in place of the one already scheduled (as the exam page does): sent at its
            # old time as well, the room's frames came in a burst of about half again its rate for two seconds after
            # every change of pace, and frames were shed.
            last_sent = [0.0]  # when the previous frame went
            respread_at: list[float] = [0.0]
            pace_moved = asyncio.Event()
            pending: list[float] = []
            sent_at: dict[int, float] = {}
            acked = asyncio.Event()

            async def read() -> None:
                async for raw in ws:
                    event = json.loads(raw)
                    name = event["event"]
                    now = time.perf_counter()
                    if name == "FRAME_ACK":
                        sent_at[event["seq"]] = pending.pop(0)
                        acked.set()
                        continue
                    student.events[name] = student.events.get(name, 0) + 1
                    if name == "OVERLOADED":
                        student.shed_times.append(now)
                    if name == "PACE":
                        # As the protocol asks (and the exam page does): the next frame at a random point up to one
                        # new interval after the previous one; a frame awaiting its FRAME_ACK keeps its rhythm at
                        # the new interval.
                        interval[0] = event["frame_interval_ms"] / 1000.0
                        student.intervals.append(event["frame_interval_ms"])
                        if not pending:
                            respread_at[0] = now + random.random() * max(0.0, last_sent[0] + interval[0] - now)
                            pace_moved.set()
                    if name in RESULT_EVENTS and "seq" in event and event["seq"] in sent_at:
                        started = sent_at.pop(event["seq"])
                        if name == "ATTENTION_UPDATE":
                            student.latencies.append((now - started) * 1000)
                            student.answered += 1
                            student.result_times.append(now)
                        for older in [s for s in sent_at if s < event["seq"]]:
                            del sent_at[older]
                            student.unanswered += 1

            reader = asyncio.create_task(read())
            k = random.randrange(VARIANTS)
            student.result_times.append(time.perf_counter())  # gaps count from the connect
            # As the protocol asks (and the exam page does): the first frame at a random point of READY's
            # start_within_ms.
            next_at = time.perf_counter() + random.random() * ready.get("start_within_ms", 0) / 1000.0
            while True:
                while (delay := next_at - time.perf_counter()) > 0:
                    try:
                        await asyncio.wait_for(pace_moved.wait(), timeout=delay)
                    except TimeoutError:
                        break
                    pace_moved.clear()
                    next_at = respread_at[0]
                if time.perf_counter() >= stop_at:
                    break
                acked.clear()
                pace_moved.clear()  # a PACE heard from here until the ACK keeps the rhythm (`pending`)
                kind = behaviour(student, time.perf_counter() - t0)
                last_sent[0] = time.perf_counter()
                pending.append(last_sent[0])
                await ws.send(frames[kind][k % VARIANTS])
                student.sent += 1
                k += 1
                await asyncio.wait_for(acked.wait(), timeout=60)
                next_at += interval[0]
            await asyncio.sleep(3.0)  # answers for the last frames
            student.unanswered += len(sent_at)
            student.result_times.append(stop_at)
            reader.cancel()
            await ws.send(json.dumps({"type": "end"}))
    except Exception as exc:  # noqa: BLE001 - recorded per student, never fatal to the run
        student.error = f"{type(exc).__name__}: {exc}"


async def client_main(args) -> dict:
    seats = json.loads(Path(args.seats).read_text())
    frames = {k: [bytes.fromhex(x) for x in v] for k, v in json.loads(Path(args.frames).read_text()).items()}
    students = [Student(i, a, c) for i, (a, c) in enumerate(seats)]
    t0 = time.perf_counter()
    stop_at = t0 + args.duration
    # Students join over the first frame interval, as they do when an exam starts.
    await asyncio.gather(
        *(
            run_student(args.port, s, frames, t0, stop_at, offset=i * BASE_INTERVAL_S / len(students))
            for i, s in enumerate(students)
        )
    )
    latencies = [x for s in students for x in s.latencies]
    gaps = []
    for s in students:
        times = s.result_times
        gaps.extend(b - a for a, b in zip(times, times[1:], strict=False))
    events: dict[str, int] = {}
    for s in students:
        for k, v in s.events.items():
            events[k] = events.get(k, 0) + v
    sent = sum(s.sent for s in students)
    answered = sum(s.answered for s in students)
    connected = sum(s.connected for s in students)
    return {
        "students": len(students),
        "connected": connected,
        "errors": [s.error for s in students if s.error][:5],
        "p50_ms": pct(latencies, 50),
        "p95_ms": pct(latencies, 95),
        "max_ms": round(max(latencies), 1) if latencies else None,
        "frames_sent": sent,
        "frames_answered": answered,
        "answered_share": round(answered / sent, 4) if sent else 0.0,
        # Frames a student at the exam's own interval would have sent: push-back lowers frames_sent below it.
        "frames_nominal": int(connected * args.duration / BASE_INTERVAL_S),
        "longest_gap_s": round(max(gaps), 2) if gaps else None,
        "students_longest_gap_over_6s": sum(
            1 for s in students if any(b - a > 6.0 for a, b in zip(s.result_times, s.result_times[1:], strict=False))
        ),
        # When into the step each gap over 6 s began (seconds), to tell a connect burst from the steady state.
        "gaps_over_6s_started_at_s": sorted(
            round(a - t0, 1)
            for s in students
            for a, b in zip(s.result_times, s.result_times[1:], strict=False)
            if b - a > 6.0
        ),
        "events": dict(sorted(events.items())),
        "overloaded": events.get("OVERLOADED", 0),
        # OVERLOADED events per 10 s of the step, to tell the connect burst from the steady state.
        "overloaded_per_10s": [
            sum(1 for s in students for t in s.shed_times if lo <= t - t0 < lo + 10)
            for lo in range(0, int(args.duration) + 10, 10)
        ],
        # p95 frame-to-event of the frames answered in each 10 s of the step (the same split).
        "p95_ms_per_10s": [
            pct(answered_between(students, t0 + lo, t0 + lo + 10), 95) for lo in range(0, int(args.duration) + 10, 10)
        ],
        "error_events": events.get("ERROR", 0),
        "pace_events": events.get("PACE", 0),
        "max_paced_interval_ms": max((i for s in students for i in s.intervals), default=None),
    }


# --- Orchestration ---------------------------------------------------------------------------------------------------


def postgres_processes() -> list:
    import psutil

    return [p for p in psutil.process_iter(["name", "cmdline"]) if (p.info["name"] or "").startswith("postgres")]


def cpu_seconds(processes) -> float:
    total = 0.0
    for p in processes:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except Exception:  # noqa: BLE001 - a process that just exited
            pass
    return total


def rss_mb(processes) -> float:
    total = 0.0
    for p in processes:
        try:
            total += p.memory_info().rss / 2**20
        except Exception:  # noqa: BLE001
            pass
    return round(total, 1)


async def sample_roles(roles, stop: asyncio.Event, samples: list, every: float = 5.0) -> None:
    """CPU% (of one core) and RSS by role every `every` seconds. `roles` maps a name to a callable giving its
    processes now (workers can be replaced, PostgreSQL backends come and go)."""
    started = last_t = time.monotonic()
    last = {name: cpu_seconds(get()) for name, get in roles.items()}
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=every)
        except TimeoutError:
            pass
        now = time.monotonic()
        span = max(now - last_t, 1e-6)
        sample: dict = {"t_s": round(now - started, 1)}
        for name, get in roles.items():
            procs = get()
            cpu = cpu_seconds(procs)
            sample[f"{name}_cpu_pct"] = round(max(0.0, 100 * (cpu - last[name]) / span), 1)
            sample[f"{name}_rss_mb"] = rss_mb(procs)
            last[name] = cpu
        samples.append(sample)
        last_t = now


def run_step(students: int, args, frames_file: Path, enrolled: dict) -> dict:
    import psutil
    from asgiref.sync import async_to_sync  # noqa: F401 - Django is set up; seeding is synchronous here

    from bench import live

    tag = f"cap-{args.pool}-{students}-{int(time.time())}"
    seats = live.seed(students + 1, enrolled, tag, json.loads(args.exam_settings))
    warm_seat, seats = seats[0], seats[1:]
    extra = dict(kv.split("=", 1) for kv in args.env)
    processes = live.Processes(
        pool=args.pool,
        port=args.port,
        redis=args.redis,
        database_url=args.database_url,
        workers=args.workers,
        extra_env=extra,
    )
    samples: list = []
    try:
        warm_s = asyncio.run(live.warm_up(args.port, warm_seat[0], warm_seat[1], json_frames(frames_file)["face"][0]))
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(seats, f)
            seats_file = f.name
        out_file = Path(tempfile.mkstemp(suffix=".json")[1])
        client = subprocess.Popen(
            [sys.executable, __file__, "--client", "--port", str(args.port), "--seats", seats_file,
             "--frames", str(frames_file), "--duration", str(args.duration), "--out", str(out_file)],
            cwd=ROOT,
        )  # fmt: skip
        server = psutil.Process(processes.server.pid)
        client_proc = psutil.Process(client.pid)
        roles = {
            "server": lambda: [server],
            "workers": processes.worker_processes,
            "database": postgres_processes,
            "load_generator": lambda: [client_proc],
        }

        async def sample_until_client_exits() -> None:
            stop = asyncio.Event()
            task = asyncio.create_task(sample_roles(roles, stop, samples))
            while client.poll() is None:
                await asyncio.sleep(0.5)
            stop.set()
            await task

        asyncio.run(sample_until_client_exits())
        if client.returncode != 0:
            raise RuntimeError(f"the load generator failed with exit code {client.returncode}")
        result = json.loads(out_file.read_text())
    finally:
        processes.stop()
    counters = server_counters([a for a, _ in seats])
    steady = samples[1:-1] or samples
    mean = lambda key: round(statistics.fmean(s[key] for s in steady), 1) if steady else None  # noqa: E731
    server_rss = [s["server_rss_mb"] for s in steady]
    workers_rss = [s["workers_rss_mb"] for s in steady]
    result.update(
        {
            "duration_s": args.duration,
            "warm_up_s": round(warm_s, 1),
            "server": counters,
            "cpu_pct": {role: mean(f"{role}_cpu_pct") for role in ("workers", "server", "database", "load_generator")},
            "server_rss_mb": [server_rss[0], server_rss[-1]] if server_rss else None,
            "server_rss_mb_per_student": round(server_rss[-1] / max(1, students), 2) if server_rss else None,
            "workers_rss_mb": [workers_rss[0], workers_rss[-1]] if workers_rss else None,
            "samples": samples,
        }
    )
    result["meets_knee"] = meets_knee(result)
    return result


def meets_knee(r: dict) -> bool:
    rss = r.get("server_rss_mb") or [0, 0]
    return bool(
        r["p95_ms"] is not None
        and r["p95_ms"] <= KNEE_P95_MS
        and r["answered_share"] >= KNEE_ANSWERED
        and r["error_events"] == 0
        and r["connected"] == r["students"]
        and r["frames_sent"] >= KNEE_PACED * r["frames_nominal"]
        and rss[1] - rss[0] <= KNEE_RSS_GROWTH_MB
    )


def server_counters(attempt_ids: list[int]) -> dict:
    from django.db.models import Sum

    from proctoring.models import Flag, ProctoringSession, Snapshot

    sessions = ProctoringSession.objects.filter(attempt_id__in=attempt_ids)
    names = [f.name for f in ProctoringSession._meta.get_fields()]
    fields = [n for n in ("frames_analysed", "frames_dropped", "frames_shed", "server_errors") if n in names]
    totals = sessions.aggregate(**{n: Sum(n) for n in fields})
    totals["flags"] = Flag.objects.filter(session__in=sessions).count()
    totals["snapshots"] = Snapshot.objects.filter(flag__session__in=sessions).count()
    return {k: v or 0 for k, v in totals.items()}


def json_frames(path: Path) -> dict[str, list[bytes]]:
    return {k: [bytes.fromhex(x) for x in v] for k, v in json.loads(path.read_text()).items()}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", default="25,50,75,100,150,200,300")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds per step")
    parser.add_argument("--pool", default="local", choices=("local", "celery"))
    parser.add_argument("--workers", type=int, default=None, help="inference processes (default: the server's own)")
    parser.add_argument("--label", default=None, help="store this run under runs.<label> instead of steps")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server (repeatable)")
    parser.add_argument(
        "--exam-settings", default="{}", help='the exam\'s proctoring settings, e.g. {"object_reuse_frames": 0}'
    )
    parser.add_argument("--port", type=int, default=8105)
    parser.add_argument("--redis", default=os.getenv("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4"))
    parser.add_argument(
        "--database-url", default=os.getenv("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/capacity_bench")
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--stop-after-failures", type=int, default=2, help="stop the ramp after this many misses")
    parser.add_argument("--table", metavar="RUN", help="print a markdown table of a stored run and exit")
    # The load generator's own process.
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seats", help=argparse.SUPPRESS)
    parser.add_argument("--frames", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.client:
        result = asyncio.run(client_main(args))
        Path(args.out).write_text(json.dumps(result))
        return 0
    if args.table:
        print(table(json.loads(args.output.read_text()), args.table))
        return 0

    from bench import live

    # The server runs as in production: DEBUG off (Django's debug cursor records every query, which costs the
    # database threads measurable time under load). The seeding here and the server share the key, so the
    # sessions seeded here sign the students in there.
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("SECRET_KEY", "capacity-bench-only-" + "k" * 40)
    live.ensure_database(args.database_url)
    live.setup_django(args.database_url)
    random.seed(0)
    frames_file = Path(tempfile.mkstemp(suffix=".json")[1])
    frames_file.write_text(json.dumps({k: [b.hex() for b in v] for k, v in frame_variants().items()}))
    enrolled = live.enrolment()
    results = json.loads(args.output.read_text()) if args.output.exists() else {}
    key = args.label or args.pool
    run = {"steps": {}}
    results.setdefault("runs", {})[key] = run
    misses = 0
    for students in (int(n) for n in args.students.split(",")):
        print(f"==> {key}: {students} students, {args.duration:.0f} s", flush=True)
        step = run_step(students, args, frames_file, enrolled)
        run["steps"][str(students)] = step
        brief = {k: step[k] for k in ("p50_ms", "p95_ms", "answered_share", "longest_gap_s", "overloaded",
                                      "error_events", "pace_events", "cpu_pct", "meets_knee")}  # fmt: skip
        print(f"    {brief}", flush=True)
        misses = 0 if step["meets_knee"] else misses + 1
        met = [int(n) for n, s in run["steps"].items() if s["meets_knee"]]
        run["knee"] = max(met) if met else 0
        run["meta"] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
            "pool": args.pool,
            "workers": args.workers or "server default",
            "env": extra_env_of(args),
            "exam_settings": json.loads(args.exam_settings),
            "frame_interval_ms": int(BASE_INTERVAL_S * 1000),
            "load_average_at_end": os.getloadavg(),
            "command": "python bench/capacity.py " + " ".join(argv),
        }
        if args.label is None:
            results["knee" if args.pool == "local" else f"knee_{args.pool}"] = run["knee"]
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2) + "\n")
        if misses >= args.stop_after_failures:
            print("    two steps in a row past the knee: stopping the ramp", flush=True)
            break
    frames_file.unlink(missing_ok=True)
    return 0


def table(results: dict, key: str) -> str:
    """A markdown table of one run's steps (README, closing notes)."""
    run = next((results[part][key] for part in ("runs", "levers", "before") if key in results.get(part, {})), None)
    if run is None:
        raise SystemExit(f"no run {key!r} in the results")
    head = (
        "| students | p50 | p95 | max | answered | longest gap | OVERLOADED | ERROR | paced to | "
        "CPU workers / server / database / load | server RSS (per student) | workers RSS | knee |"
    )
    lines = [head, "|" + "---|" * 13]
    for n, s in run["steps"].items():
        cpu = s["cpu_pct"]
        rss = s["server_rss_mb"] or [0, 0]
        lines.append(
            f"| {n} | {s['p50_ms']:.0f} ms | {s['p95_ms']:.0f} ms | {s['max_ms']:.0f} ms | "
            f"{100 * s['answered_share']:.1f}% | {s['longest_gap_s']:.1f} s | {s['overloaded']} | "
            f"{s['error_events']} | "
            f"{s.get('max_paced_interval_ms') or '-'} | {cpu['workers']:.0f} / {cpu['server']:.0f} / "
            f"{cpu['database']:.0f} / {cpu['load_generator']:.0f}% | {rss[0]:.0f}->{rss[1]:.0f} MB "
            f"({s['server_rss_mb_per_student']} MB) | {s['workers_rss_mb'][1]:.0f} MB | "
            f"{'yes' if s['meets_knee'] else 'no'} |"
        )
    return "\n".join(lines)


def extra_env_of(args) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in args.env)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
