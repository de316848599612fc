from __future__ import annotations

from django.urls import path

from proctoring import views, views_review, views_student

app_name = "proctoring"
urlpatterns: list = [
    # Private evidence (views.py): only the exam's instructor and admins, audited.
    path("proctoring/snapshots/<int:snapshot_id>/", views.snapshot_view, name="snapshot"),
    path("proctoring/identity/photos/<int:student_id>/<str:kind>/", views.identity_photo, name="identity_photo"),
    # Student pages (views_student.py): consent, face enrolment, pre-exam system check.
    path("proctoring/consent/", views_student.consent, name="consent"),
    path("proctoring/enrol/", views_student.enrol, name="enrol"),
    path("proctoring/enrol/frame/", views_student.enrol_frame, name="enrol_frame"),
    path("proctoring/enrol/finish/", views_student.enrol_finish, name="enrol_finish"),
    path("proctoring/enrol/id/", views_student.enrol_id, name="enrol_id"),
    path("proctoring/enrol/id/frame/", views_student.enrol_id_frame, name="enrol_id_frame"),
    path("proctoring/check/<int:attempt_id>/", views_student.system_check, name="check"),
    path("proctoring/check/exam/<int:exam_id>/", views_student.system_check_exam, name="check_exam"),
    path("proctoring/identity/exam/<int:exam_id>/", views_student.identity_exam, name="identity_exam"),
    # Review (views_review.py): instructors' exam summaries, attempt review, re-scoring, live monitor; students'
    # confirmed flags and responses.
    path("review/", views_review.exam_index, name="review_index"),
    path("review/identity/", views_review.identity_review, name="identity_review"),
    path("review/exams/<int:exam_id>/", views_review.exam_attempts, name="review_exam"),
    path("review/exams/<int:exam_id>/export.csv", views_review.exam_export, name="review_export"),
    path("review/exams/<int:exam_id>/rescore/", views_review.exam_rescore, name="review_rescore"),
    path("review/exams/<int:exam_id>/monitor/", views_review.exam_monitor, name="review_monitor"),
    path("review/attempts/<int:attempt_id>/", views_review.attempt_review, name="review_attempt"),
    path("review/flags/<int:flag_id>/decide/", views_review.flag_decide, name="review_decide"),
    path("my/attempts/<int:attempt_id>/flags/", views_review.student_flags, name="my_flags"),
]
