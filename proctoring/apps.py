from django.apps import AppConfig


class ProctoringConfig(AppConfig):
    name = "proctoring"

    def ready(self) -> None:
        # Imported here: receivers import the models and the consumers, which need the app registry ready.
        from django.db.models.signals import post_delete

        from exams.signals import attempt_started
        from proctoring.models import FaceTemplate, ReferencePhoto
        from proctoring.receivers import attempt_started_to_monitor, private_photo_deleted

        attempt_started.connect(attempt_started_to_monitor, dispatch_uid="proctoring.attempt_started_to_monitor")
        for model in (FaceTemplate, ReferencePhoto):
            post_delete.connect(private_photo_deleted, sender=model, dispatch_uid=f"proctoring.photo.{model.__name__}")
