"""Database side of the browser end-to-end test, run as `python -m tests.e2e.scenario seed|report ATTEMPT_ID`.

The browser test talks to a real ASGI server (daphne) in another process, on its own database. The test process
itself never opens that database through its own Django settings (pytest-django guards those); it runs this module
with the server's DATABASE_URL instead and reads JSON from stdout.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from pathlib import Path

# Fast and short, so the scripted exam takes seconds per phase: a frame every 0.5 s, flags after 2 of 3 frames.
E2E_PROCTORING_SETTINGS = {"frame_interval_ms": 500, "k": 2, "n": 3, "clear_after": 2, "cooldown_s": 1.0}
STUDENT = {"username": "alice", "password": "alice-sits-the-e2e-exam"}


def seed() -> dict:
    from django.utils import timezone

    from accounts.models import User
    from exams.models import Choice, Enrollment, Exam, Question

    instructor = User.objects.create_user("ivy", password="ivy-runs-the-e2e-exam", role=User.Role.INSTRUCTOR)
    alice = User.objects.create_user(
        STUDENT["username"], password=STUDENT["password"], role=User.Role.STUDENT, first_name="Alice"
    )
    now = timezone.now()
    exam = Exam.objects.create(
        owner=instructor,
        title="Webcam end-to-end exam",
        instructions="One question. Your webcam is proctored.",
        opens_at=now - timedelta(hours=1),
        closes_at=now + timedelta(hours=5),
        duration_minutes=30,
        published=True,
        proctoring_enabled=True,
        proctoring_settings=E2E_PROCTORING_SETTINGS,
    )
    question = Question.objects.create(exam=exam, kind=Question.Kind.SINGLE, text="What is 2 + 2?", points=1)
    Choice.objects.create(question=question, text="3", order=0)
    Choice.objects.create(question=question, text="4", is_correct=True, order=1)
    Enrollment.objects.create(exam=exam, student=alice)
    return {"exam_id": exam.pk, "student_id": alice.pk, **STUDENT}


def report(attempt_id: int) -> dict:
    from django.conf import settings

    from exams.models import Attempt
    from proctoring.models import BrowserSignal, ConsentRecord, FaceTemplate, Flag, ProctoringSession

    attempt = Attempt.objects.select_related("student").get(pk=attempt_id)
    sessions = list(ProctoringSession.objects.filter(attempt=attempt).order_by("started_at"))
    flags = []
    for flag in Flag.objects.filter(session__attempt=attempt).prefetch_related("snapshots").order_by("started_at"):
        flags.append(
            {
                "kind": flag.kind,
                "status": flag.status,
                "confidence": flag.confidence,
                "threshold": flag.threshold,
                "model_version": flag.model_version,
                "snapshots": [
                    {
                        "size_bytes": s.size_bytes,
                        "width": s.width,
                        "height": s.height,
                        "file_bytes": (Path(settings.PRIVATE_STORAGE_DIR) / s.path).stat().st_size
                        if (Path(settings.PRIVATE_STORAGE_DIR) / s.path).exists()
                        else None,
                        "jpeg": (Path(settings.PRIVATE_STORAGE_DIR) / s.path).read_bytes()[:3] == b"\xff\xd8\xff"
                        if (Path(settings.PRIVATE_STORAGE_DIR) / s.path).exists()
                        else False,
                    }
                    for s in flag.snapshots.all()
                ],
            }
        )
    template = FaceTemplate.objects.filter(user=attempt.student).first()
    return {
        "attempt_status": attempt.status,
        "sessions": [
            {
                "status": s.status,
                "resumed_count": s.resumed_count,
                "frames_analysed": s.frames_analysed,
                "observations": s.observations.count(),
            }
            for s in sessions
        ],
        "flags": flags,
        "signals": list(
            BrowserSignal.objects.filter(session__attempt=attempt).order_by("at").values_list("kind", flat=True)
        ),
        "face_template": {"frames_used": template.frames_used, "pack": template.pack, "model_id": template.model_id}
        if template
        else None,
        "consents": list(ConsentRecord.objects.filter(user=attempt.student).values("accepted", "notice_version")),
    }


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examsite.settings")
    import django

    django.setup()
    if argv[:1] == ["seed"]:
        result = seed()
    elif len(argv) == 2 and argv[0] == "report":
        result = report(int(argv[1]))
    else:
        print("usage: python -m tests.e2e.scenario seed | report ATTEMPT_ID", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
