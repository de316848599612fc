"""Proctoring services, one module per concept: consent, enrolment, identity (who enrolled), sessions (a live
session's frames, and the flags they open and close), evidence (private files and who viewed them), retention.
Review's services are review's (proctoring/review/services)."""
