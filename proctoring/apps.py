from django.apps import AppConfig


class ProctoringConfig(AppConfig):
    name = "proctoring"

    def ready(self) -> None:
        # Imported here: receivers import the models and the consumers, which need the app registry ready.
        from django.db.models.signals import post_delete

        from exams.hooks import evidence_provider_register, exam_form_section_register, setup_provider_register
        from exams.signals import attempt_closed, attempt_started
        from proctoring.forms import ExamProctoringForm
        from proctoring.models import FaceTemplate, ReferencePhoto
        from proctoring.receivers import attempt_closed_end_session, attempt_started_to_monitor, private_photo_deleted
        from proctoring.selectors import exam_has_sessions, proctoring_setup_status

        attempt_started.connect(attempt_started_to_monitor, dispatch_uid="proctoring.attempt_started_to_monitor")
        attempt_closed.connect(attempt_closed_end_session, dispatch_uid="proctoring.attempt_closed_end_session")
        # The start gate: consent, enrolment, photo ID and identity before a proctored exam's clock starts.
        setup_provider_register(proctoring_setup_status)
        exam_form_section_register(ExamProctoringForm)
        evidence_provider_register(exam_has_sessions)
        for model in (FaceTemplate, ReferencePhoto):
            post_delete.connect(private_photo_deleted, sender=model, dispatch_uid=f"proctoring.photo.{model.__name__}")
