"""The scripted webcam exam of the live end-to-end test (tests/e2e: the same phases, photos and crops), recorded
through the real pipeline without a browser: real models on real photos, the worker's own analyze_job(), and the
live session service that stores observations, flags and snapshots. What the review pages get is what a real
sitting stores.

Needs the model pack and the evaluation photos; `missing()` says which is absent so a test can skip or fail.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import cv2
from django.conf import settings
from django.utils import timezone

from exams.models import Attempt, Exam
from proctoring.pool.base import AnalysisResult, FrameJob, analyze_job, worker_init
from proctoring.services.enrolment import face_enrol
from proctoring.services.sessions import session_end, session_open, session_record_result
from tests.e2e import clip

# (phase, frames): the e2e exam's order, with the right person between the others so each pattern closes.
SCRIPT: list[tuple[str, int]] = [
    ("enrol", 6),
    ("other_person", 6),
    ("enrol", 5),
    ("two_faces", 6),
    ("enrol", 5),
    ("nobody", 6),
    ("enrol", 5),
    ("phone", 6),
    ("enrol", 5),
]


def missing() -> str | None:
    from proctoring.vision.packs import ModelPackError, require_pack

    try:
        require_pack(settings.MODEL_PACK)
    except ModelPackError as exc:
        return f"the model pack is not installed: {exc}"
    evalset = Path(settings.DATA_DIR) / "evalset"
    absent = [s.file for s in clip.PHASES.values() if s is not None and not (evalset / s.file).exists()]
    if absent:
        return f"evaluation photos missing from {evalset}: {absent} (run `python bench/evalset.py fetch`)"
    return None


def record_scripted_exam(*, exam: Exam, student) -> Attempt:
    evalset = Path(settings.DATA_DIR) / "evalset"
    frames = {phase: clip.fit(clip.source_image(source, evalset)) for phase, source in clip.PHASES.items()}
    result = face_enrol(user=student, images=list(clip.jitter(frames["enrol"], 5)))
    assert result.template is not None, result.rejections
    now = timezone.now()
    attempt = Attempt.objects.create(exam=exam, student=student, started_at=now, deadline=now + timedelta(hours=1))
    start = session_open(attempt_id=attempt.pk, user=student)
    worker_init()
    t0 = now.timestamp()
    seq = 0
    for phase, count in SCRIPT:
        for image in clip.jitter(frames[phase], count):
            seq += 1
            ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
            assert ok
            job = FrameJob(
                job_id=uuid.uuid4().hex,
                session_id=start.session_id,
                seq=seq,
                frame=jpeg.tobytes(),
                enrolled=start.enrolled,
            )
            analysed = AnalysisResult.from_dict(analyze_job(job))
            session_record_result(
                session_id=start.session_id,
                seq=seq,
                received_at=t0 + 2 * seq,
                result=analysed,
                frame=jpeg.tobytes(),
                latency_ms=analysed.worker_ms,
            )
    session_end(session_id=start.session_id, reason="client_end")
    attempt.status = Attempt.Status.SUBMITTED
    attempt.submitted_at = timezone.now()
    attempt.save(update_fields=["status", "submitted_at"])
    return attempt
