from django.apps import AppConfig


class ReviewConfig(AppConfig):
    """Human review of what proctoring recorded: the review pages, decisions and their audit trail, re-scoring, the
    timeline, the identity queue and the live monitor. Review builds on proctoring; proctoring never imports it."""

    name = "proctoring.review"
    label = "review"
