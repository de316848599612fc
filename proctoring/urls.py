from __future__ import annotations

from django.urls import path

from proctoring.views import evidence, student

app_name = "proctoring"
urlpatterns: list = [
    # Private evidence (views/evidence.py): only the exam's instructor and admins, audited.
    path("proctoring/snapshots/<int:snapshot_id>/", evidence.snapshot_view, name="snapshot"),
    path("proctoring/identity/photos/<int:student_id>/<str:kind>/", evidence.identity_photo, name="identity_photo"),
    # Student pages (views/student.py): consent, face enrolment, pre-exam system check.
    path("proctoring/consent/", student.consent, name="consent"),
    path("proctoring/enrol/", student.enrol, name="enrol"),
    path("proctoring/enrol/frame/", student.enrol_frame, name="enrol_frame"),
    path("proctoring/enrol/finish/", student.enrol_finish, name="enrol_finish"),
    path("proctoring/enrol/id/", student.enrol_id, name="enrol_id"),
    path("proctoring/enrol/id/frame/", student.enrol_id_frame, name="enrol_id_frame"),
    path("proctoring/check/<int:attempt_id>/", student.system_check, name="check"),
    path("proctoring/check/exam/<int:exam_id>/", student.system_check_exam, name="check_exam"),
    path("proctoring/identity/exam/<int:exam_id>/", student.identity_exam, name="identity_exam"),
]
