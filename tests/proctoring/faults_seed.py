"""Seed the daphne server of test_faults_server.py: charlie's exam (tests/review/monitor_seed.py) with alice and bob,
plus `extra` more students sitting it, every one enrolled (a placeholder embedding: the server runs the scripted
analyzer), each with a signed-in session.

Run inside the server's environment: `python manage.py shell -c "from tests.proctoring.faults_seed import main;
main(200)"`. Prints {"attempts": [...], "cookies": [...], "exam": id} on the last line, alice first.
"""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
from django.utils import timezone

from accounts.models import User
from exams.models import Attempt, Enrollment, Exam
from proctoring.models import FaceTemplate
from proctoring.selectors import current_embedding_model
from tests.proctoring.scale_out_seed import session_cookie
from tests.review.monitor_seed import seed_exam


def main(extra: int = 0, **proctoring_settings) -> None:
    seeded = seed_exam()
    exam = Exam.objects.get(pk=seeded["exam"])
    if proctoring_settings:
        exam.proctoring_settings = {**(exam.proctoring_settings or {}), **proctoring_settings}
        exam.save(update_fields=["proctoring_settings"])
    now = timezone.now()
    password = User.objects.get(username="alice").password
    model_id = current_embedding_model(pack="default")[1]
    attempts = [seeded["attempts"]["alice"], seeded["attempts"]["bob"]]
    for i in range(extra):
        student = User.objects.create(username=f"student{i:03d}", role=User.Role.STUDENT, password=password)
        Enrollment.objects.create(exam=exam, student=student)
        FaceTemplate.objects.create(
            user=student, pack="default", model_id=model_id, embedding=np.ones(512, "<f4").tobytes(), dim=512
        )
        attempts.append(
            Attempt.objects.create(exam=exam, student=student, started_at=now, deadline=now + timedelta(hours=1)).pk
        )
    cookies = [session_cookie(Attempt.objects.get(pk=pk).student) for pk in attempts]
    print(json.dumps({"exam": exam.pk, "attempts": attempts, "cookies": cookies}))
