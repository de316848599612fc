from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from accounts.forms import (
    AccessiblePasswordChangeForm,
    AccessiblePasswordResetForm,
    AccessibleSetPasswordForm,
    LoginForm,
)

# Django's own auth views with our forms and templates. The password pages use templates/accounts/ rather than
# templates/registration/, so that they do not replace the admin's own password-change pages, which look those
# names up too.
urlpatterns = [
    path(
        "login/",
        # No redirect_authenticated_user: a signed-in user sent here by a permission check (user_passes_test)
        # would bounce straight back, in a redirect loop.
        auth_views.LoginView.as_view(authentication_form=LoginForm),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password_change/",
        auth_views.PasswordChangeView.as_view(
            form_class=AccessiblePasswordChangeForm, template_name="accounts/password_change_form.html"
        ),
        name="password_change",
    ),
    path(
        "password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="accounts/password_change_done.html"),
        name="password_change_done",
    ),
    # Password reset by email, with Django's own views (the console email backend unless EMAIL_HOST is set). The
    # same confirm page serves the invitation links the user import sends (accounts.services.users_invite).
    path(
        "password_reset/",
        auth_views.PasswordResetView.as_view(
            form_class=AccessiblePasswordResetForm,
            template_name="accounts/password_reset_form.html",
            email_template_name="accounts/password_reset_email.txt",
            subject_template_name="accounts/password_reset_subject.txt",
        ),
        name="password_reset",
    ),
    path(
        "password_reset/done/",
        auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_done.html"),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            form_class=AccessibleSetPasswordForm, template_name="accounts/password_reset_confirm.html"
        ),
        name="password_reset_confirm",
    ),
    path(
        "reset/done/",
        auth_views.PasswordResetCompleteView.as_view(template_name="accounts/password_reset_complete.html"),
        name="password_reset_complete",
    ),
]
