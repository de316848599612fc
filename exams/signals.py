"""What happens to an attempt, for the apps built on exams to follow without exams knowing them (issue 10's
direction: accounts <- exams <- proctoring). Sent after the transaction that made it commits."""

from __future__ import annotations

from django.dispatch import Signal

# A new attempt began: sender=Attempt, attempt=<Attempt>. Not sent when an open attempt is resumed.
attempt_started = Signal()
