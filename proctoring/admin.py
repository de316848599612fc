"""The admin for what proctoring keeps: the evidence audit log, browser signals and stream events, reference photos and
face enrolments. The flagged sessions and flags, with their review actions, are review's (proctoring/review/admin.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils.html import format_html

from proctoring.forms import ReferencePhotoUploadForm
from proctoring.models import BrowserSignal, EvidenceView, FaceTemplate, ReferencePhoto, StreamEvent
from proctoring.services.identity import IdentityError, PhotoImportReport, photos_in, reference_photos_import


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
