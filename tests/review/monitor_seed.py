"""Seed the daphne server of test_monitor_browser.py: charlie's exam with alice and bob sitting it, both enrolled.

Run inside the server's environment: `python manage.py shell -c "from tests.review.monitor_seed import main; main()"`.
Prints the ids as JSON on the last line. tests/proctoring/scale_out_seed.py builds on seed_exam().
"""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
from django.contrib.auth.hashers import make_password
from django.utils import timezone

from accounts.models import User
from exams.models import Attempt, Enrollment, Exam
from proctoring.models import FaceTemplate
from proctoring.selectors import current_embedding_model

PASSWORD = "monitor-pass-123"


def seed_exam() -> dict:
    now = timezone.now()
    password = make_password(PASSWORD)
    charlie = User.objects.create(
        username="charlie", first_name="Charlie", role=User.Role.INSTRUCTOR, password=password
    )
    exam = Exam.objects.create(
        owner=charlie,
        title="Live Monitor Exam",
        opens_at=now - timedelta(hours=1),
        closes_at=now + timedelta(days=1),
        published=True,
    )
    attempts, students = {}, {}
    for username, first, last in (("alice", "Alice", "Adams"), ("bob", "Bob", "Brown")):
        student = User.objects.create(
            username=username, first_name=first, last_name=last, role=User.Role.STUDENT, password=password
        )
        Enrollment.objects.create(exam=exam, student=student)
        students[username] = student.pk
        FaceTemplate.objects.create(
            user=student,
            pack="default",
            model_id=current_embedding_model(pack="default")[1],
            embedding=np.ones(512, "<f4").tobytes(),
            dim=512,
        )
        attempts[username] = Attempt.objects.create(
            exam=exam, student=student, started_at=now, deadline=now + timedelta(hours=1)
        ).pk
    return {"exam": exam.pk, "attempts": attempts, "students": students, "password": PASSWORD}


def main() -> None:
    print(json.dumps(seed_exam()))
