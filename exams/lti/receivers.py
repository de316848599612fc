"""The LMS's answers to what exams says happened: a graded attempt goes to the grade book (AGS); an integrity concern
a person confirmed goes to the platform's Assessment Control Service as a flag, when the platform handed the
attempt to this tool (LTI Proctoring Services)."""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import receiver

from exams.lti import services
from exams.signals import attempt_graded, integrity_flag_confirmed

logger = logging.getLogger(__name__)


@receiver(attempt_graded, dispatch_uid="lti-grade-passback")
def grade_passback(sender: Any, *, attempt: Any, **kwargs: Any) -> None:
    """Send the score now, in the request that graded it (a failure is kept for a retry, never raised)."""
    grade = services.grade_queue(attempt=attempt)
    if grade is not None:
        services.grade_send(grade=grade)


@receiver(integrity_flag_confirmed, dispatch_uid="lti-acs-flag")
def acs_flag(sender: Any, *, attempt: Any, kind: str, at: Any, confidence: float, note: str, **kwargs: Any) -> None:
    services.acs_flag_send(attempt=attempt, kind=kind, at=at, confidence=confidence, note=note)
