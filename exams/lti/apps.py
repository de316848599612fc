from __future__ import annotations

from django.apps import AppConfig


class LtiConfig(AppConfig):
    name = "exams.lti"
    label = "lti"
    verbose_name = "LMS integration (LTI 1.3)"

    def ready(self) -> None:
        from exams.lti import receivers  # noqa: F401 - connects the grade passback to exams' signals
