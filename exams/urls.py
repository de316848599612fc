"""Exam URLs. `/`, `/exams/<id>/`, `POST /exams/<id>/start/` and `/attempts/<id>/` are relied on by clients and
scripts: keep them stable."""

from __future__ import annotations

from django.urls import path

from . import manage_views, views

urlpatterns = [
    path("", views.home, name="home"),
    # Students (and, for /exams/<id>/, the exam's manager).
    path("exams/<int:exam_id>/", views.exam_detail, name="exam_detail"),
    path("exams/<int:exam_id>/start/", views.exam_start, name="exam_start"),
    path("attempts/<int:attempt_id>/", views.attempt_page, name="attempt_page"),
    path("attempts/<int:attempt_id>/answers/<int:question_id>/", views.answer_autosave, name="answer_autosave"),
    path("attempts/<int:attempt_id>/submit/", views.attempt_submit, name="attempt_submit"),
    path("attempts/<int:attempt_id>/results/", views.attempt_results, name="attempt_results"),
    # Instructors.
    path("exams/new/", manage_views.exam_create, name="exam_create"),
    path("exams/<int:exam_id>/edit/", manage_views.exam_edit, name="exam_edit"),
    path("exams/<int:exam_id>/publish/", manage_views.exam_publish, name="exam_publish"),
    path("exams/<int:exam_id>/questions/new/", manage_views.question_create, name="question_create"),
    path("exams/<int:exam_id>/questions/<int:question_id>/edit/", manage_views.question_edit, name="question_edit"),
    path(
        "exams/<int:exam_id>/questions/<int:question_id>/delete/",
        manage_views.question_delete,
        name="question_delete",
    ),
    path("exams/<int:exam_id>/questions/<int:question_id>/move/", manage_views.question_move, name="question_move"),
    path("exams/<int:exam_id>/students/", manage_views.exam_students, name="exam_students"),
    path(
        "exams/<int:exam_id>/students/<int:enrollment_id>/",
        manage_views.enrollment_edit,
        name="enrollment_edit",
    ),
    path("exams/<int:exam_id>/attempts/<int:attempt_id>/", manage_views.attempt_review, name="attempt_review"),
]
