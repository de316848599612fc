"""Proctoring services, one module per concept: enrolment, sessions, flags, review."""
