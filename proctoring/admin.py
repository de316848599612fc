"""The admin for live proctoring: flagged sessions with snapshot thumbnails, flags inline, filters by exam, kind and
status. Thumbnails load through the private snapshot view, so every one an admin sees is permission-checked and
audited like any other view of evidence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils.html import format_html, format_html_join

from proctoring.forms import ReferencePhotoUploadForm
from proctoring.models import (
    BrowserSignal,
    EvidenceView,
    FaceTemplate,
    Flag,
    ProctoringSession,
    ReferencePhoto,
    Snapshot,
    StreamEvent,
)
from proctoring.services.identity import PhotoImportReport, reference_photos_import
from proctoring.services.review import ReviewError, flags_review_bulk


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
    url = reverse("proctoring:review_attempt", args=[flag.session.attempt_id]) + f"#flag-{flag.pk}"
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


@admin.register(EvidenceView)
class EvidenceViewAdmin(admin.ModelAdmin):
    list_display = ("at", "viewer", "snapshot_ref", "attempt_id")
    list_select_related = ("viewer",)
    search_fields = ("viewer__username", "snapshot_ref")
    date_hierarchy = "at"
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # An audit log that admins can edit is not an audit log.
        return False


for model in (BrowserSignal, StreamEvent):
    admin.site.register(
        model,
        list_display=("session", "kind", "at"),
        list_filter=("kind",),
        list_select_related=("session",),
        show_full_result_count=False,
    )


def _identity_thumbnail(student_id: int, kind: str) -> str:
    url = reverse("proctoring:identity_photo", args=[student_id, kind])
    return format_html('<img src="{}" width="64" alt="{} photo" loading="lazy">', url, kind.capitalize())


@admin.register(ReferencePhoto)
class ReferencePhotoAdmin(admin.ModelAdmin):
    """Reference photos (issue 11): listed here, added or replaced through the upload page (one photo or a zip),
    which checks every photo for one usable face before it attaches anything."""

    list_display = ("user", "photo", "source", "added_by", "created_at")
    list_select_related = ("user", "added_by")
    list_filter = ("source",)
    search_fields = ("user__username", "user__first_name", "user__last_name")
    readonly_fields = ("user", "photo", "source", "added_by", "created_at", "pack", "model_id")
    exclude = ("path", "embedding")
    change_list_template = "admin/proctoring/referencephoto/change_list.html"

    @admin.display(description="Photo")
    def photo(self, obj: ReferencePhoto) -> str:
        return _identity_thumbnail(obj.user_id, "reference")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the upload page adds them, through the service that checks the face

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern | URLResolver]:
        custom = [
            path("upload/", self.admin_site.admin_view(self.upload_view), name="proctoring_referencephoto_upload")
        ]
        return custom + super().get_urls()

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        """One student's photo, or a zip of photos named by username: all checked first, all or nothing."""
        if not request.user.is_superuser and not request.user.has_perm("proctoring.add_referencephoto"):
            raise PermissionDenied
        report = None
        form = ReferencePhotoUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            report = _upload(form, actor=request.user)
            if report.ok and not report.dry_run:
                messages.success(request, report.summary())
                return HttpResponseRedirect(reverse("admin:proctoring_referencephoto_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Add reference photos",
            "opts": self.opts,
            "form": form,
            "report": report,
        }
        return TemplateResponse(request, "admin/proctoring/referencephoto/upload.html", context)


def _upload(form: ReferencePhotoUploadForm, *, actor: Any) -> PhotoImportReport:
    from proctoring.services.identity import IdentityError, photos_in

    upload = form.cleaned_data["file"]
    data = upload.read()
    student = form.cleaned_data["student"].strip()
    dry_run = form.cleaned_data["dry_run"]
    if student:
        suffix = Path(upload.name).suffix.lower()
        files = [(f"{student}{suffix}", data)]
    else:
        try:
            files = photos_in(data)
        except IdentityError as exc:
            return PhotoImportReport(errors=[f"{upload.name}: {exc.message}"], dry_run=dry_run)
    return reference_photos_import(files=files, added_by=actor, source=ReferencePhoto.Source.ADMIN, dry_run=dry_run)


@admin.register(FaceTemplate)
class FaceTemplateAdmin(admin.ModelAdmin):
    """Face enrolments and what is known of who made them. Decisions are made in the identity review, where the
    photos sit side by side; here they are listed and filtered."""

    list_display = (
        "user", "enrolment_photo", "id_photo", "verification", "similarity", "id_similarity", "threshold",
        "verified_by", "updated_at",
    )  # fmt: skip
    list_select_related = ("user", "verified_by")
    list_filter = ("verification", "pack")
    search_fields = ("user__username", "user__first_name", "user__last_name")
    exclude = ("embedding", "photo_path", "id_photo_path")
    readonly_fields = (
        "user", "pack", "model_id", "dim", "neutral_yaw", "neutral_pitch", "neutral_roll", "frames_used", "quality",
        "verification", "similarity", "id_similarity", "id_captured_at", "threshold", "verified_at", "verified_by",
        "verification_note",
    )  # fmt: skip

    @admin.display(description="Enrolment photo")
    def enrolment_photo(self, obj: FaceTemplate) -> str:
        return _identity_thumbnail(obj.user_id, "enrolment") if obj.photo_path else "-"

    @admin.display(description="Photo ID")
    def id_photo(self, obj: FaceTemplate) -> str:
        return _identity_thumbnail(obj.user_id, "id") if obj.id_photo_path else "-"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
