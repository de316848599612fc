"""The Django admin for users: roles up front, the CSV import page, and a CSV export action."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils import timezone

from accounts import selectors, services
from accounts.forms import UserAdminChangeForm, UserAdminCreationForm, UserImportForm
from accounts.models import User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    form = UserAdminChangeForm
    add_form = UserAdminCreationForm
    list_display = ("username", "email", "first_name", "last_name", "role", "face_enrolled", "is_active", "last_login")
    list_filter = ("role", "is_active", "is_staff", "is_superuser")
    search_fields = ("username", "first_name", "last_name", "email", "role")
    ordering = ("username",)
    # The face column reads the one-to-one FaceTemplate; one join instead of a query per row.
    list_select_related = ("face_template",)
    actions = ["export_csv"]
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (
            "Role",
            {
                "fields": ("role",),
                "description": "Admins get full access to this admin site; "
                "instructors and students get none unless you tick the permissions below.",
            },
        ),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        (
            "Permissions",
            {
                "fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions"),
                "classes": ("collapse",),
            },
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username", "email", "role", "usable_password", "password1", "password2"),
            },
        ),
    )

    @admin.display(boolean=True, description="Face enrolled")
    def face_enrolled(self, obj: User) -> bool:
        return hasattr(obj, "face_template")

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        # Keep the admin flags in step with the role (services.role_access), unless the person ticked the flags
        # themselves in this same save: then their choice wins.
        changed = set(form.changed_data)
        if "role" in changed and not changed & {"is_staff", "is_superuser"}:
            obj.is_staff, obj.is_superuser = services.role_access(
                role=obj.role,
                previous_role=form.initial.get("role") if change else None,
                is_staff=obj.is_staff,
                is_superuser=obj.is_superuser,
            )
        elif not change:
            obj.is_staff, obj.is_superuser = services.role_access(
                role=obj.role, previous_role=None, is_staff=False, is_superuser=False
            )
        super().save_model(request, obj, form, change)

    def get_urls(self) -> list[URLPattern | URLResolver]:
        custom = [
            path(
                "import-csv/",
                self.admin_site.admin_view(self.import_csv_view),
                name="accounts_user_import_csv",
            )
        ]
        # Before the inherited patterns: their "<path:object_id>/" would swallow "import-csv/".
        return custom + super().get_urls()

    def import_csv_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a CSV, run the same service as `manage.py import_users`, show the report."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        report = None
        if request.method == "POST":
            form = UserImportForm(request.POST, request.FILES)
            if form.is_valid():
                report = services.users_import_csv(file=form.cleaned_data["file"], dry_run=form.cleaned_data["dry_run"])
                if report.ok and not report.dry_run:
                    messages.success(request, report.summary())
                    if form.cleaned_data["invite"]:
                        invited = services.users_invite(
                            usernames=report.usernames, domain=request.get_host(), use_https=request.is_secure()
                        )
                        messages.success(request, invited.summary())
                    elif note := report.password_note():
                        messages.warning(request, note)
                    return HttpResponseRedirect(reverse("admin:accounts_user_changelist"))
        else:
            form = UserImportForm()
        context = {
            **self.admin_site.each_context(request),
            "title": "Import users from CSV",
            "opts": self.opts,
            "form": form,
            "report": report,
            "columns": services.IMPORT_COLUMNS,
            "max_rows": services.MAX_IMPORT_ROWS,
        }
        return TemplateResponse(request, "admin/accounts/user/import_csv.html", context)

    @admin.action(description="Export selected users as CSV", permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet[User]) -> HttpResponse:
        response = HttpResponse(
            selectors.users_export_csv(users=queryset.order_by("username")), content_type="text/csv; charset=utf-8"
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="users-{stamp}.csv"'
        return response
