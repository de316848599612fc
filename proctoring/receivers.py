"""Proctoring's answers to what exams says happened (exams.signals), and the clean-up of private photos when their
rows go; connected in ProctoringConfig.ready()."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from exams.models import Attempt
from proctoring.consumers import monitor_group, monitor_status

log = logging.getLogger(__name__)


def attempt_started_to_monitor(sender: Any, *, attempt: Attempt, **kwargs: Any) -> None:
    """A student began an attempt: their tile on the live monitor moves from "not started" to "setting up" now,
    not only once proctoring connects after consent, enrolment and the camera check."""
    layer = get_channel_layer()
    if layer is None:
        return
    student = attempt.student
    status = monitor_status(
        attempt_id=attempt.pk,
        student=student.get_full_name() or student.get_username(),
        student_id=attempt.student_id,
        connection="setting_up",
    )
    try:
        async_to_sync(layer.group_send)(monitor_group(attempt.exam_id), status)
    except Exception:  # noqa: BLE001 - the live monitor is best effort; starting the exam comes first
        log.warning("proctoring: could not tell the monitor that attempt %s started", attempt.pk, exc_info=True)


def private_photo_deleted(sender: Any, *, instance: Any, **kwargs: Any) -> None:
    """An enrolment (FaceTemplate) or a reference photo row is gone (a deleted account, an admin's delete): its
    private file goes too, once the deletion is committed."""
    from proctoring.services.evidence import private_delete

    relative = getattr(instance, "photo_path", None) or getattr(instance, "path", "")
    if relative:
        transaction.on_commit(lambda: private_delete(relative))
