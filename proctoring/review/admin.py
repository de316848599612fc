"""The admin's view of review: flagged sessions with snapshot thumbnails, flags inline, filters by exam, kind and
status, and the review actions. Thumbnails load through the private snapshot view, so every one an admin sees is
permission-checked and audited like any other view of evidence; every action goes through the review service, so it
is audited like a decision on the review page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from proctoring.decisions import ReviewError
from proctoring.models import Flag, ProctoringSession, Snapshot
from proctoring.review.services.decisions import flags_review_bulk


def _review(request: HttpRequest, flag_ids: list[int], decision: str) -> None:
    """Admin actions go through the review service, so they are audited like a decision on the review page."""
    try:
        count = flags_review_bulk(flag_ids=flag_ids, actor=request.user, decision=decision, note="(admin action)")
    except ReviewError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{count} flag(s): {decision} recorded in the audit log.")


@admin.action(description="Confirm the open flags of the selected sessions")
def confirm_open_flags(modeladmin: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Any]) -> None:
    ids = list(Flag.objects.filter(session__in=queryset, status=Flag.Status.OPEN).values_list("pk", flat=True))
    _review(request, ids, "confirm")


@admin.action(description="Dismiss the open flags of the selected sessions")
def dismiss_open_flags(modeladmin: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Any]) -> None:
    ids = list(Flag.objects.filter(session__in=queryset, status=Flag.Status.OPEN).values_list("pk", flat=True))
    _review(request, ids, "dismiss")


@admin.action(description="Confirm the selected flags")
def confirm_flags(modeladmin: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Any]) -> None:
    _review(request, list(queryset.values_list("pk", flat=True)), "confirm")


@admin.action(description="Dismiss the selected flags")
def dismiss_flags(modeladmin: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Any]) -> None:
    _review(request, list(queryset.values_list("pk", flat=True)), "dismiss")


@admin.action(description="Reopen the selected flags")
def reopen_flags(modeladmin: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Any]) -> None:
    _review(request, list(queryset.values_list("pk", flat=True)), "reopen")


def _review_link(flag: Flag) -> str:
    url = reverse("review:attempt", args=[flag.session.attempt_id]) + f"#flag-{flag.pk}"
    return format_html('<a href="{}">Review flag {}</a>', url, flag.pk)


def _thumbnail(snapshot: Snapshot, *, width: int = 96) -> str:
    url = reverse("proctoring:snapshot", args=[snapshot.pk])
    return format_html(
        '<a href="{}"><img src="{}" width="{}" loading="lazy" alt="Evidence snapshot {} of flag {}"></a>',
        url,
        url,
        width,
        snapshot.pk,
        snapshot.flag_id,
    )


# Thumbnails shown per session in the flagged-sessions list; the rest are counted ("+4 more").
EVIDENCE_SHOWN = 3


def titled(base: type[admin.FieldListFilter], title: str) -> type[admin.FieldListFilter]:
    """A field filter with its own title, where the field's name alone would be ambiguous."""

    class Titled(base):  # type: ignore[valid-type, misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.title = title

    return Titled


class HasFlagsFilter(admin.SimpleListFilter):
    title = "flags"
    parameter_name = "flagged"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "With flags"), ("open", "With unreviewed flags"), ("no", "Without flags"), ("all", "All")]

    def choices(self, changelist: Any) -> Iterator[dict[str, Any]]:
        # Flagged sessions are what admins come here for, so "With flags" is the default instead of "All".
        current = self.value() or "yes"
        for lookup, title in self.lookup_choices:
            yield {
                "selected": current == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in (None, "yes"):
            return queryset.filter(flag_count__gt=0)
        if self.value() == "open":
            return queryset.filter(open_count__gt=0)
        if self.value() == "no":
            return queryset.filter(flag_count=0)
        return queryset


class FlagInline(admin.TabularInline):
    model = Flag
    extra = 0
    can_delete = False
    show_change_link = True
    fields = (
        "kind",
        "status",
        "started_at",
        "ended_at",
        "confidence",
        "threshold",
        "model_version",
        "evidence",
        "review",
    )
    # Status is read-only: a decision goes through the review service (audited), from the review page or actions.
    readonly_fields = fields

    @admin.display(description="Decide")
    def review(self, flag: Flag) -> str:
        return _review_link(flag)

    @admin.display(description="Evidence")
    def evidence(self, flag: Flag) -> str:
        return format_html_join(" ", "{}", ((_thumbnail(s),) for s in flag.snapshots.all())) or "-"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related("snapshots")

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(ProctoringSession)
class ProctoringSessionAdmin(admin.ModelAdmin):
    # Who, the evidence and what is left to review first: at 1280 px the old order put the thumbnails past the right
    # edge, behind eight columns of numbers. The stream's counters share one column.
    list_display = (
        "student",
        "exam",
        "thumbnails",
        "open_count_display",
        "flag_count_display",
        "status",
        "started_at",
        "stream_health",
    )
    list_display_links = ("student",)
    list_filter = (
        HasFlagsFilter,
        ("status", titled(admin.ChoicesFieldListFilter, "session status")),
        ("attempt__exam", admin.RelatedOnlyFieldListFilter),
        ("flags__kind", titled(admin.ChoicesFieldListFilter, "flag kind")),
        # Django titles both status filters "By status"; say which status each one is.
        ("flags__status", titled(admin.ChoicesFieldListFilter, "flag status")),
    )
    list_select_related = ("attempt__exam", "attempt__student")
    search_fields = ("attempt__student__username", "attempt__student__last_name", "attempt__exam__title")
    date_hierarchy = "started_at"
    list_per_page = 50
    # Counting every row of a large table on each page load is what makes big admins slow.
    show_full_result_count = False
    inlines = [FlagInline]
    actions = [confirm_open_flags, dismiss_open_flags]
    readonly_fields = (
        "attempt",
        "status",
        "started_at",
        "ended_at",
        "end_reason",
        "last_frame_at",
        "resumed_count",
        "frames_analysed",
        "frames_dropped",
        "frames_shed",
        "server_errors",
        "state",
        "settings_snapshot",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                flag_count=Count("flags", distinct=True),
                open_count=Count("flags", filter=Q(flags__status=Flag.Status.OPEN), distinct=True),
            )
            # The evidence column's snapshots in two queries for the page, not one per row.
            .prefetch_related(Prefetch("flags__snapshots", queryset=Snapshot.objects.order_by("taken_at", "id")))
        )

    @admin.display(description="Student", ordering="attempt__student__username")
    def student(self, session: ProctoringSession) -> str:
        return str(session.attempt.student)

    @admin.display(description="Exam", ordering="attempt__exam__title")
    def exam(self, session: ProctoringSession) -> str:
        return session.attempt.exam.title

    @admin.display(description="Flags", ordering="flag_count")
    def flag_count_display(self, session: ProctoringSession) -> int:
        return session.flag_count

    @admin.display(description="Unreviewed", ordering="open_count")
    def open_count_display(self, session: ProctoringSession) -> int:
        return session.open_count

    @admin.display(description="Evidence")
    def thumbnails(self, session: ProctoringSession) -> str:
        snapshots = sorted(
            (s for flag in session.flags.all() for s in flag.snapshots.all()), key=lambda s: (s.taken_at, s.pk)
        )
        if not snapshots:
            return "-"
        shown = format_html_join(" ", "{}", ((_thumbnail(s, width=64),) for s in snapshots[:EVIDENCE_SHOWN]))
        more = len(snapshots) - EVIDENCE_SHOWN
        return format_html('{} <span class="evidence-more">+{} more</span>', shown, more) if more > 0 else shown

    @admin.display(description="Stream")
    def stream_health(self, session: ProctoringSession) -> str:
        """The stream's counters, none of them against the student: frames analysed, and what the server or the
        network cost."""
        return (
            f"{session.frames_analysed} analysed · {session.frames_shed} shed · {session.server_errors} errors · "
            f"{session.frames_dropped} dropped · {session.resumed_count} resumed"
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Flag)
class FlagAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "kind",
        "status",
        "student",
        "exam",
        "started_at",
        "ended_at",
        "confidence",
        "threshold",
        "evidence",
        "review",
    )
    actions = [confirm_flags, dismiss_flags, reopen_flags]
    list_filter = ("kind", "status", ("session__attempt__exam", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("session__attempt__exam", "session__attempt__student")
    search_fields = ("session__attempt__student__username", "session__attempt__exam__title")
    readonly_fields = (
        "session",
        "kind",
        "status",
        "started_at",
        "ended_at",
        "started_seq",
        "ended_seq",
        "confidence",
        "threshold",
        "model_version",
        "details",
        "evidence",
        "review",
    )
    list_per_page = 50
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related("snapshots")

    @admin.display(description="Student")
    def student(self, flag: Flag) -> str:
        return str(flag.session.attempt.student)

    @admin.display(description="Exam")
    def exam(self, flag: Flag) -> str:
        return flag.session.attempt.exam.title

    @admin.display(description="Evidence")
    def evidence(self, flag: Flag) -> str:
        return format_html_join(" ", "{}", ((_thumbnail(s, width=64),) for s in flag.snapshots.all())) or "-"

    @admin.display(description="Decide")
    def review(self, flag: Flag) -> str:
        return _review_link(flag)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
