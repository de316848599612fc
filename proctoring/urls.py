from __future__ import annotations

from django.urls import path

from proctoring import views, views_student

app_name = "proctoring"
urlpatterns: list = [
    # Private evidence (views.py): only the exam's instructor and admins, audited.
    path("proctoring/snapshots/<int:snapshot_id>/", views.snapshot_view, name="snapshot"),
    # Student pages (views_student.py): consent, face enrolment, pre-exam system check.
    path("proctoring/consent/", views_student.consent, name="consent"),
    path("proctoring/enrol/", views_student.enrol, name="enrol"),
    path("proctoring/enrol/frame/", views_student.enrol_frame, name="enrol_frame"),
    path("proctoring/enrol/finish/", views_student.enrol_finish, name="enrol_finish"),
    path("proctoring/check/<int:attempt_id>/", views_student.system_check, name="check"),
]
