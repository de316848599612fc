"""Forms for the sign-in pages and the admin's user pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import (
    AdminUserCreationForm,
    AuthenticationForm,
    PasswordChangeForm,
    PasswordResetForm,
    SetPasswordForm,
    UserChangeForm,
)

from accounts.models import User
from accounts.services import MAX_IMPORT_BYTES

# The id of the box that lists a form's non-field errors ("Please enter a correct username and password").
FORM_ERRORS_ID = "form-errors"


class AccessibleFormMixin:
    """Points the first field at the form-wide errors, so a screen reader announces them on focus.

    Per-field errors need nothing: Django 5.2 already sets aria-invalid and aria-describedby="<id>_error
    <id>_helptext" on a widget, and templates/accounts/_field.html renders elements with those ids. Django's auth
    forms already set autofocus and the autocomplete attributes (username, current-password, new-password).
    """

    def full_clean(self) -> None:
        super().full_clean()  # type: ignore[misc]
        if not self.non_field_errors():  # type: ignore[attr-defined]
            return
        name = next(iter(self.fields))  # type: ignore[attr-defined]
        bound = self[name]  # type: ignore[index]
        described_by = [FORM_ERRORS_ID, *(bound.aria_describedby or "").split()]
        self.fields[name].widget.attrs["aria-describedby"] = " ".join(described_by)  # type: ignore[attr-defined]


class LoginForm(AccessibleFormMixin, AuthenticationForm):
    pass


class AccessiblePasswordChangeForm(AccessibleFormMixin, PasswordChangeForm):
    pass


class AccessiblePasswordResetForm(AccessibleFormMixin, PasswordResetForm):
    pass


class AccessibleSetPasswordForm(AccessibleFormMixin, SetPasswordForm):
    pass


class UserAdminCreationForm(AdminUserCreationForm):
    """The admin's "Add user" form, with the email and role our users need."""

    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ("username", "email", "role")


class UserAdminChangeForm(UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User
        fields = "__all__"


class UserImportForm(forms.Form):
    label_suffix = ""

    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8 CSV with the header username,email,role,first_name,last_name,password "
        "(first_name, last_name and password may be left out).",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )
    dry_run = forms.BooleanField(
        label="Check only: report problems without creating anyone",
        required=False,
    )
    invite = forms.BooleanField(
        label="Email each new user a link to choose their password",
        help_text="The link works once, for 3 days. Users without an email address are listed in the report.",
        required=False,
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_IMPORT_BYTES:
            raise forms.ValidationError(
                f"The file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB: split it into smaller files."
            )
        return upload
