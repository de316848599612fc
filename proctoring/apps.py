from django.apps import AppConfig


class ProctoringConfig(AppConfig):
    name = "proctoring"

    def ready(self) -> None:
        # Imported here: receivers import the models and the consumers, which need the app registry ready.
        from exams.signals import attempt_started
        from proctoring.receivers import attempt_started_to_monitor

        attempt_started.connect(attempt_started_to_monitor, dispatch_uid="proctoring.attempt_started_to_monitor")
