"""Proctoring pages: evidence (private snapshots and identity photos), student (consent, enrolment, photo ID, the
system check, the identity step) and review (instructors' summaries, attempts, re-scoring, the monitor, identity
review, students' confirmed flags)."""
