"""What happens to an attempt, for the apps built on exams to follow without exams knowing them (issue 10's
direction: accounts <- exams <- proctoring). Sent after the transaction that made it commits."""

from __future__ import annotations

from django.dispatch import Signal

# A new attempt began: sender=Attempt, attempt=<Attempt>. Not sent when an open attempt is resumed.
attempt_started = Signal()

# An attempt stopped running: submitted, or expired with its clock. sender=Attempt, attempt=<Attempt>. Proctoring
# ends the attempt's session. Sent once per closing, after the commit (never for a rolled-back one).
attempt_closed = Signal()

# An attempt's score was (re)computed: submitted, expired or graded by hand. sender=Attempt, attempt=<Attempt>.
# Sent after the commit; the LMS grade book listens (exams/lti).
attempt_graded = Signal()

# A person confirmed an integrity concern about an attempt (a proctoring flag). sender=Attempt, attempt=<Attempt>,
# kind (e.g. "phone_detected"), at (datetime), confidence (0-1), note. Sent after the commit, only for a person's
# confirmation, never for a flag the rules raised by themselves. The LMS's Assessment Control Service listens.
integrity_flag_confirmed = Signal()
