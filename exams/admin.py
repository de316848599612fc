from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from .models import Answer, Attempt, Choice, Enrollment, Exam, Question


class QuestionInline(admin.TabularInline):
    model = Question
    fields = ["order", "kind", "text", "points", "edit_link"]
    readonly_fields = ["edit_link"]
    extra = 0
    show_change_link = True

    @admin.display(description="Choices")
    def edit_link(self, obj: Question) -> str:
        if not obj.pk:
            return "Save first"
        url = reverse("admin:exams_question_change", args=[obj.pk])
        return format_html('<a href="{}">Edit choices</a>', url)


class EnrollmentInline(admin.TabularInline):
    model = Enrollment
    fields = ["student", "extra_minutes", "accommodations"]
    autocomplete_fields = ["student"]
    extra = 0


@admin.register(Exam)
class ExamAdmin(admin.ModelAdmin):
    list_display = ["title", "owner", "opens_at", "closes_at", "duration_minutes", "published", "proctoring_enabled"]
    list_filter = ["published", "proctoring_enabled", "owner"]
    list_select_related = ["owner"]
    search_fields = ["title", "owner__username"]
    date_hierarchy = "opens_at"
    autocomplete_fields = ["owner"]
    inlines = [QuestionInline, EnrollmentInline]


class ChoiceInline(admin.TabularInline):
    model = Choice
    fields = ["order", "text", "is_correct"]
    extra = 0


@admin.register(Question)
class QuestionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "exam", "kind", "points", "order"]
    list_filter = ["kind", "exam"]
    list_select_related = ["exam"]
    search_fields = ["text", "exam__title"]
    inlines = [ChoiceInline]


@admin.register(Enrollment)
class EnrollmentAdmin(admin.ModelAdmin):
    list_display = ["student", "exam", "extra_minutes", "created_at"]
    list_filter = ["exam"]
    list_select_related = ["student", "exam"]
    search_fields = ["student__username", "student__email", "exam__title"]
    autocomplete_fields = ["student", "exam"]


class AnswerInline(admin.TabularInline):
    model = Answer
    fields = ["question", "text", "points_awarded", "graded_by", "graded_at", "saved_at"]
    readonly_fields = ["question", "text", "graded_by", "graded_at", "saved_at"]
    extra = 0
    can_delete = False


@admin.register(Attempt)
class AttemptAdmin(admin.ModelAdmin):
    list_display = [
        "student",
        "exam",
        "number",
        "status",
        "started_at",
        "deadline",
        "score",
        "max_score",
        "fully_graded",
    ]
    list_filter = ["status", "exam", "fully_graded"]
    list_select_related = ["student", "exam"]
    search_fields = ["student__username", "exam__title"]
    date_hierarchy = "started_at"
    readonly_fields = ["started_at", "deadline", "submitted_at"]
    inlines = [AnswerInline]
