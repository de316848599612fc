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
from proctoring.services.evidence import private_delete
from proctoring.services.sessions import session_end_for_attempt

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


def attempt_closed_end_session(sender: Any, *, attempt: Attempt, **kwargs: Any) -> None:
    """An attempt was submitted or expired: its proctoring session ends (and the socket is told)."""
    session_end_for_attempt(attempt=attempt, reason="attempt_closed")


def private_photo_deleted(sender: Any, *, instance: Any, **kwargs: Any) -> None:
    """An enrolment (FaceTemplate, with its enrolment and ID photos) or a reference photo row is gone (a deleted
    account, an admin's delete, retention): its private files go too, once the deletion is committed."""
    paths = [getattr(instance, name, "") for name in ("photo_path", "id_photo_path", "path")]
    for relative in filter(None, paths):
        transaction.on_commit(lambda relative=relative: private_delete(relative))
