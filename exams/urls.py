"""Exam URLs. `/`, `/exams/<id>/`, `POST /exams/<id>/start/` and `/attempts/<id>/` are relied on by clients and
scripts: keep them stable."""

from __future__ import annotations

from django.urls import path

from exams.views import manage, student

urlpatterns = [
    path("", student.home, name="home"),
    # Students (and, for /exams/<id>/, the exam's manager).
    path("exams/<int:exam_id>/", student.exam_detail, name="exam_detail"),
    path("exams/<int:exam_id>/start/", student.exam_start, name="exam_start"),
    path("attempts/<int:attempt_id>/", student.attempt_page, name="attempt_page"),
    path("attempts/<int:attempt_id>/answers/<int:question_id>/", student.answer_autosave, name="answer_autosave"),
    path("attempts/<int:attempt_id>/submit/", student.attempt_submit, name="attempt_submit"),
    path("attempts/<int:attempt_id>/results/", student.attempt_results, name="attempt_results"),
    # Instructors.
    path("exams/new/", manage.exam_create, name="exam_create"),
    path("exams/<int:exam_id>/edit/", manage.exam_edit, name="exam_edit"),
    path("exams/<int:exam_id>/publish/", manage.exam_publish, name="exam_publish"),
    path("exams/<int:exam_id>/questions/new/", manage.question_create, name="question_create"),
    path("exams/<int:exam_id>/questions/<int:question_id>/edit/", manage.question_edit, name="question_edit"),
    path(
        "exams/<int:exam_id>/questions/<int:question_id>/delete/",
        manage.question_delete,
        name="question_delete",
    ),
    path("exams/<int:exam_id>/questions/<int:question_id>/move/", manage.question_move, name="question_move"),
    path("exams/<int:exam_id>/students/", manage.exam_students, name="exam_students"),
    path(
        "exams/<int:exam_id>/students/<int:enrollment_id>/",
        manage.enrollment_edit,
        name="enrollment_edit",
    ),
    path("exams/<int:exam_id>/attempts/<int:attempt_id>/", manage.attempt_review, name="attempt_review"),
]
