"""What one analysed frame's database work costs the server, through the ORM and as the plain SQL the server runs
(proctoring/services/frame_rows.py), written to bench/results/frame_rows.json.

    python bench/frame_rows.py [--frames 2000] [--database-url postgres://postgres@127.0.0.1:5432/frame_rows_bench]

A real session on PostgreSQL with the rules' state of a session in full flow. Each frame, as session_record_result
does it: lock the session row (with its attempt), insert the observation, update the session, commit. Both ways run
in turns of 200 frames (so both see the same machine), and each reports the CPU time of this process (what daphne
spends) and of the PostgreSQL backend serving it, per frame, and the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import live  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "frame_rows.json"
TURN = 200


def fresh_database(url: str) -> None:
    """The bench's own database, new each run (its factories' names start again at 0)."""
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=2000, help="frames each way")
    parser.add_argument(
        "--database-url", default=os.getenv("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/frame_rows_bench")
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    os.environ.setdefault("DEBUG", "false")  # as in production: the debug cursor would log every query
    os.environ.setdefault("SECRET_KEY", "frame-rows-bench-only-" + "k" * 40)
    os.environ["DB_POOL"] = "false"
    fresh_database(args.database_url)
    live.setup_django(args.database_url)

    import psutil
    from django.db import connection, transaction
    from django.utils import timezone

    from exams.models import Attempt
    from proctoring import rules
    from proctoring.models import Observation, ProctoringSession
    from proctoring.services import frame_rows
    from tests.factories import ExamFactory, StudentFactory

    now = timezone.now()
    student = StudentFactory()
    attempt = Attempt.objects.create(
        exam=ExamFactory(), student=student, started_at=now, deadline=now + timedelta(hours=2)
    )
    settings = rules.RuleSettings()
    state = rules.RuleState()
    for i in range(settings.n):  # a window full of frames, as in the middle of an exam
        record = rules.FrameRecord(seq=i + 1, at=now.timestamp() + 2 * i, face_count=1, similarity=0.8,
                                   identity_checked=True, identity_threshold=0.4, yaw=3.0, pitch=1.0)  # fmt: skip
        state = rules.step(state, record, settings).state
    session = ProctoringSession.objects.create(
        attempt=attempt, started_at=now, state=state.to_dict(), settings_snapshot=settings.to_dict()
    )
    observed = {
        "face_count": 1, "face_scores": [0.93], "identity_checked": True, "similarity": 0.78, "identity_threshold": 0.4,
        "identity_error": "", "yaw": 3.5, "pitch": -2.0, "gaze_yaw": 1.5, "gaze_pitch": -0.5, "phone_score": 0.02,
        "other_objects": {}, "objects_from_seq": 40, "identity_from_seq": None, "attention": 97, "signals": [],
        "latency_ms": 41.3, "model_versions": {"detector": "blazeface@0.6.0", "objects": "ssd-mobilenet-v2@2018"},
    }  # fmt: skip
    seq = [1000]

    def orm_frame() -> None:
        seq[0] += 1
        with transaction.atomic():
            row = ProctoringSession.objects.select_for_update().select_related("attempt").get(pk=session.pk)
            Observation.objects.create(session=row, seq=seq[0], captured_at=datetime.now(UTC), **observed)
            row.frames_analysed += 1
            row.last_seq = seq[0]
            row.last_frame_at = datetime.now(UTC)
            row.save(update_fields=["state", "frames_dropped", "last_frame_at", "frames_analysed", "last_seq"])
            row.attempt.is_live()

    def sql_frame() -> None:
        seq[0] += 1
        with transaction.atomic():
            locked = frame_rows.session_lock(session.pk)
            frame_rows.observation_insert(session_id=session.pk, seq=seq[0], captured_at=datetime.now(UTC), **observed)
            frame_rows.session_frame_update(session_id=session.pk, state=locked.state, dropped=0,
                                            last_frame_at=datetime.now(UTC), last_seq=seq[0])  # fmt: skip
            locked.attempt.is_live()

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = psutil.Process(cursor.fetchone()[0])
    ways = {"orm": orm_frame, "plain_sql": sql_frame}
    totals = {name: {"cpu_s": 0.0, "database_cpu_s": 0.0, "wall_s": 0.0, "frames": 0} for name in ways}
    for fn in ways.values():  # warm: imports, caches, the backend's plans
        for _ in range(50):
            fn()
    for _ in range(max(1, args.frames // TURN)):
        for name, fn in ways.items():
            cpu, db_cpu, wall = time.process_time(), sum(backend.cpu_times()[:2]), time.perf_counter()
            for _ in range(TURN):
                fn()
            totals[name]["cpu_s"] += time.process_time() - cpu
            totals[name]["database_cpu_s"] += sum(backend.cpu_times()[:2]) - db_cpu
            totals[name]["wall_s"] += time.perf_counter() - wall
            totals[name]["frames"] += TURN
    result = {
        name: {
            "server_cpu_ms_per_frame": round(1000 * t["cpu_s"] / t["frames"], 3),
            "database_cpu_ms_per_frame": round(1000 * t["database_cpu_s"] / t["frames"], 3),
            "wall_ms_per_frame": round(1000 * t["wall_s"] / t["frames"], 3),
            "frames": t["frames"],
        }
        for name, t in totals.items()
    }
    result["server_cpu_saved_ratio"] = round(
        1 - result["plain_sql"]["server_cpu_ms_per_frame"] / result["orm"]["server_cpu_ms_per_frame"], 3
    )
    result["meta"] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "load_average_at_end": os.getloadavg(),
        "command": "python bench/frame_rows.py " + " ".join(argv),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
