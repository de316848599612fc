"""Re-scoring speed: proctoring.rules.rescore() over a whole exam's stored observations, old and new in one run.

    python bench/rescore.py [--students 30] [--frames 1800] [--repeat 3] [--old-rev ceea4f9] [--no-db]

1. Builds a synthetic but realistic stream per student (seeded): one frame every 2 s, mostly a calm student facing
   the screen, with episodes of no face, a phone in view, looking away, a second face and an identity mismatch of a
   few frames to a minute, as the live pipeline would have recorded them.
2. Loads the old rules module from git (`git show REV:proctoring/rules.py`, into a temporary module: no stash, no
   checkout) and times old and new `rescore()` over every student, best of `--repeat`. Checks that both give
   exactly the same flag spans.
3. Times the live path too: one `step()` per frame from the stored JSON state and back, as the consumer does.
4. Unless --no-db: seeds the same streams into a throwaway SQLite database and times the service's
   `rescore_preview()` with old and new `rescore()`, so the figure includes reading the observations.

Writes bench/results/rescore.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "rescore.json"
# The last commit before rules.step() stopped copying its state through asdict/deepcopy every frame.
OLD_REV = "ceea4f9"
START = 1_790_000_000.0
INTERVAL_S = 2.0

# (kind, probability of starting on a given calm frame, shortest and longest episode in frames)
EPISODES = (
    ("no_face", 0.006, 2, 30),
    ("phone", 0.002, 2, 12),
    ("away", 0.010, 1, 8),
    ("two_faces", 0.002, 1, 6),
    ("mismatch", 0.0007, 3, 10),
)


def student_stream(rng: random.Random, frames: int) -> list[dict[str, Any]]:
    """One student's frames as the keyword arguments of a FrameRecord (shared by the old and new module)."""
    out: list[dict[str, Any]] = []
    kind, left = None, 0
    for seq in range(1, frames + 1):
        if left == 0:
            kind = None
            for name, p, shortest, longest in EPISODES:
                if rng.random() < p:
                    kind, left = name, rng.randint(shortest, longest)
                    break
        if kind is not None:
            left -= 1
        at = START + seq * INTERVAL_S + rng.uniform(0, 0.2)
        frame: dict[str, Any] = {
            "seq": seq,
            "at": round(at, 3),
            "face_count": 1,
            "face_scores": (round(rng.uniform(0.8, 0.95), 4),),
            "identity_checked": True,
            "similarity": round(rng.uniform(0.45, 0.75), 4),
            "identity_threshold": 0.35,
            "yaw": round(rng.gauss(0, 8), 2),
            "pitch": round(rng.gauss(0, 6), 2),
            "gaze_yaw": None,
            "gaze_pitch": None,
            "phone_score": round(rng.uniform(0, 0.1), 4) if rng.random() < 0.05 else 0.0,
        }
        if kind == "no_face":
            frame.update(face_count=0, face_scores=(), identity_checked=False, similarity=None, yaw=None, pitch=None)
            frame["identity_threshold"] = None
        elif kind == "phone":
            frame["phone_score"] = round(rng.uniform(0.35, 0.9), 4)
        elif kind == "away":
            frame["yaw"] = round(rng.choice((-1, 1)) * rng.uniform(25, 60), 2)
        elif kind == "two_faces":
            frame.update(face_count=2, face_scores=(frame["face_scores"][0], round(rng.uniform(0.5, 0.9), 4)))
            frame.update(identity_checked=False, similarity=None)
        elif kind == "mismatch":
            frame["similarity"] = round(rng.uniform(0.1, 0.4), 4)
        out.append(frame)
    return out


def load_old_rules(rev: str) -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{rev}:proctoring/rules.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    name = "_bench_old_rules"
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    # Registered before exec: dataclasses look their module up in sys.modules.
    sys.modules[name] = module
    exec(compile(source, f"{rev}:proctoring/rules.py", "exec"), module.__dict__)
    return module


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def time_rescore(module: ModuleType, streams: list[list[dict[str, Any]]], repeat: int) -> tuple[float, list]:
    settings = module.RuleSettings()
    records = [[module.FrameRecord(**f) for f in stream] for stream in streams]
    return best_of(repeat, lambda: [module.rescore(r, settings) for r in records])


def time_live(module: ModuleType, stream: list[dict[str, Any]]) -> float:
    """The consumer's per-frame work in rules: state from the stored JSON, step(), state back to JSON."""
    settings = module.RuleSettings()
    records = [module.FrameRecord(**f) for f in stream]
    stored: dict[str, Any] = {}
    started = time.perf_counter()
    for record in records:
        stored = module.step(module.RuleState.from_dict(stored), record, settings).state.to_dict()
    return time.perf_counter() - started


def spans_as_data(results: list) -> list[list[dict[str, Any]]]:
    return [[asdict(span) for span in spans] for spans in results]


def time_preview(old: ModuleType, streams: list[list[dict[str, Any]]], repeat: int) -> dict[str, Any]:
    """Seed a throwaway SQLite database and time rescore_preview() with old and new rescore()."""
    db = Path(tempfile.mkdtemp(prefix="bench-rescore-")) / "db.sqlite3"
    os.environ["DATABASE_URL"] = f"sqlite:///{db}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examsite.settings")
    import django

    django.setup()
    from unittest import mock

    from django.core.management import call_command

    from accounts.models import User
    from exams.models import Attempt, Exam
    from proctoring import rules
    from proctoring.models import Observation, ProctoringSession
    from proctoring.review.services.rescoring import rescore_preview
    from proctoring.services import rescoring

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    owner = User.objects.create(username="bench-owner", role=User.Role.INSTRUCTOR)
    at = datetime.fromtimestamp(START, tz=UTC)
    exam = Exam.objects.create(
        owner=owner,
        title="Bench",
        opens_at=at - timedelta(hours=1),
        closes_at=at + timedelta(hours=3),
        duration_minutes=90,
        published=True,
        proctoring_enabled=True,
    )
    for i, stream in enumerate(streams):
        student = User.objects.create(username=f"student{i:02d}", role=User.Role.STUDENT)
        attempt = Attempt.objects.create(
            exam=exam, student=student, status="submitted", started_at=at, deadline=at + timedelta(hours=2)
        )
        session = ProctoringSession.objects.create(attempt=attempt, started_at=at, status="ended", ended_at=at)
        Observation.objects.bulk_create(
            Observation(
                session=session,
                seq=f["seq"],
                captured_at=datetime.fromtimestamp(f["at"], tz=UTC),
                face_count=f["face_count"],
                face_scores=list(f["face_scores"]),
                identity_checked=f["identity_checked"],
                similarity=f["similarity"],
                identity_threshold=f["identity_threshold"],
                yaw=f["yaw"],
                pitch=f["pitch"],
                phone_score=f["phone_score"],
            )
            for f in stream
        )
    seed_s = time.perf_counter() - started
    config = {"k": 4, "n": 6, "phone_threshold": 0.4}
    new_s, new_plan = best_of(repeat, lambda: rescore_preview(exam=exam, config=config))

    def old_frame_records(*, session: ProctoringSession) -> list[Any]:
        # The selector as it was at OLD_REV (model instances), kept here only to measure the old preview.
        return [
            rules.FrameRecord(
                seq=o.seq,
                at=o.captured_at.timestamp(),
                face_count=o.face_count,
                face_scores=tuple(o.face_scores),
                identity_checked=o.identity_checked,
                similarity=o.similarity,
                identity_threshold=o.identity_threshold,
                identity_error=o.identity_error or None,
                yaw=o.yaw,
                pitch=o.pitch,
                gaze_yaw=o.gaze_yaw,
                gaze_pitch=o.gaze_pitch,
                phone_score=o.phone_score,
                objects=dict(o.other_objects),
            )
            for o in Observation.objects.filter(session=session).order_by("seq")
        ]

    with (
        mock.patch.object(rules, "rescore", old.rescore),
        mock.patch.object(rescoring, "frame_records_for_session", old_frame_records),
    ):
        old_s, old_plan = best_of(repeat, lambda: rescore_preview(exam=exam, config=config))
    return {
        "database": "sqlite (temporary file)",
        "seed_s": round(seed_s, 2),
        "config": config,
        "old_s": round(old_s, 3),
        "new_s": round(new_s, 3),
        "speedup": round(old_s / new_s, 2),
        "identical_plans": old_plan.summary() == new_plan.summary(),
        "flags_after": sum(new_plan.after.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--frames", type=int, default=1800, help="frames per student (1,800 = 60 min at 2 s)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--old-rev", default=OLD_REV)
    parser.add_argument("--no-db", action="store_true", help="skip the rescore_preview() timing on SQLite")
    args = parser.parse_args()

    from proctoring import rules as new

    old = load_old_rules(args.old_rev)
    rng = random.Random(20261124)
    streams = [student_stream(rng, args.frames) for _ in range(args.students)]
    total = sum(len(s) for s in streams)

    new_s, new_spans = time_rescore(new, streams, args.repeat)
    old_s, old_spans = time_rescore(old, streams, args.repeat)
    identical = spans_as_data(old_spans) == spans_as_data(new_spans)
    kinds: dict[str, int] = {}
    for spans in new_spans:
        for span in spans:
            kinds[span.kind] = kinds.get(span.kind, 0) + 1
    live_old = time_live(old, streams[0])
    live_new = time_live(new, streams[0])

    results: dict[str, Any] = {
        "rescore": {
            "students": args.students,
            "frames": total,
            "old_s": round(old_s, 3),
            "new_s": round(new_s, 3),
            "old_us_per_frame": round(old_s / total * 1e6, 1),
            "new_us_per_frame": round(new_s / total * 1e6, 1),
            "speedup": round(old_s / new_s, 2),
            "identical_spans": identical,
            "spans": dict(sorted(kinds.items())),
        },
        "live_step": {
            "frames": len(streams[0]),
            "old_us_per_frame": round(live_old / len(streams[0]) * 1e6, 1),
            "new_us_per_frame": round(live_new / len(streams[0]) * 1e6, 1),
        },
    }
    if not args.no_db:
        results["preview"] = time_preview(old, streams, args.repeat)
    results["meta"] = {
        "old_rev": args.old_rev,
        "new_on_top_of": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
        "repeat": args.repeat,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "when": datetime.now(tz=UTC).isoformat(timespec="seconds"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    if not identical or not results.get("preview", {}).get("identical_plans", True):
        sys.exit("old and new rules disagree")


if __name__ == "__main__":
    main()
