from __future__ import annotations

from django.urls import path

from proctoring.views import evidence, review, student

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
    # Review (views/review.py): instructors' exam summaries, attempt review, re-scoring, live monitor; students'
    # confirmed flags and responses.
    path("review/", review.exam_index, name="review_index"),
    path("review/identity/", review.identity_review, name="identity_review"),
    path("review/exams/<int:exam_id>/", review.exam_attempts, name="review_exam"),
    path("review/exams/<int:exam_id>/export.csv", review.exam_export, name="review_export"),
    path("review/exams/<int:exam_id>/rescore/", review.exam_rescore, name="review_rescore"),
    path("review/exams/<int:exam_id>/monitor/", review.exam_monitor, name="review_monitor"),
    path("review/attempts/<int:attempt_id>/", review.attempt_review, name="review_attempt"),
    path("review/flags/<int:flag_id>/decide/", review.flag_decide, name="review_decide"),
    path("my/attempts/<int:attempt_id>/flags/", review.student_flags, name="my_flags"),
]
