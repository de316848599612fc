"""Admin for what exams/lti keeps; django-lti's own admin registers platforms (LtiRegistration, with deployments
inline) and keys. The setup page says what to paste into the LMS."""

from __future__ import annotations

from django.contrib import admin

from exams.lti.models import ExamLink, GradeSend, ProctoringHandover


@admin.register(ExamLink)
class ExamLinkAdmin(admin.ModelAdmin):
    list_display = ("resource_link", "exam", "lineitem_url", "created_by", "created_at")
    list_select_related = ("resource_link", "exam", "created_by")
    search_fields = ("exam__title", "resource_link__title", "resource_link__id_on_platform")
    raw_id_fields = ("resource_link", "exam", "created_by")


@admin.register(GradeSend)
class GradeSendAdmin(admin.ModelAdmin):
    list_display = ("attempt", "status", "score_given", "score_maximum", "tries", "sent_at", "updated_at")
    list_filter = ("status",)
    list_select_related = ("attempt__student", "attempt__exam")
    readonly_fields = [f.name for f in GradeSend._meta.fields]


@admin.register(ProctoringHandover)
class ProctoringHandoverAdmin(admin.ModelAdmin):
    list_display = ("user", "link", "attempt_number", "state", "updated_at")
    list_filter = ("state",)
    list_select_related = ("user", "link__exam")
    readonly_fields = [f.name for f in ProctoringHandover._meta.fields]
