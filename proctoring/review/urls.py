from __future__ import annotations

from django.urls import path

from proctoring.review import views

app_name = "review"
urlpatterns: list = [
    # Instructors: exam summaries, attempt review, decisions, re-scoring, the live monitor, the identity queue.
    path("review/", views.exam_index, name="index"),
    path("review/identity/", views.identity_review, name="identity"),
    path("review/exams/<int:exam_id>/", views.exam_attempts, name="exam"),
    path("review/exams/<int:exam_id>/export.csv", views.exam_export, name="export"),
    path("review/exams/<int:exam_id>/rescore/", views.exam_rescore, name="rescore"),
    path("review/exams/<int:exam_id>/monitor/", views.exam_monitor, name="monitor"),
    path("review/attempts/<int:attempt_id>/", views.attempt_review, name="attempt"),
    path("review/flags/<int:flag_id>/decide/", views.flag_decide, name="decide"),
    # Students: their confirmed flags, and their one response to each.
    path("my/attempts/<int:attempt_id>/flags/", views.student_flags, name="my_flags"),
]
