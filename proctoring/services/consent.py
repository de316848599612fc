"""Consent to webcam proctoring: the notice's version, and each student's recorded answer.

A student's answer is tied to the version of the notice they read. When the notice changes (what is captured, who
sees it, how long it is kept), CONSENT_NOTICE_VERSION changes with it and everyone is asked again, because consent to
an older notice is not consent to the new one.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from accounts.models import User
from proctoring.models import CONSENT_NOTICE_VERSION, ConsentRecord


def consent_retention_days() -> int:
    """How long snapshots are kept, as the notice states it. The retention purge reads the same setting."""
    return int(getattr(settings, "PROCTORING_RETENTION_DAYS", 90))


@transaction.atomic
def consent_record(*, user: User, accepted: bool, version: str = CONSENT_NOTICE_VERSION) -> ConsentRecord:
    """Record the student's answer to the notice, with a timestamp. Every answer is kept: this is the audit trail."""
    return ConsentRecord.objects.create(user=user, accepted=accepted, notice_version=version)
