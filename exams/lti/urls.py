"""LTI URLs (README, "Use it from your LMS"): what an LMS administrator pastes, and the pages behind a launch."""

from __future__ import annotations

from django.urls import path

from exams.lti import views

app_name = "lti"
urlpatterns = [
    # Called by the LMS.
    path("login/<uuid:registration_uuid>/", views.login_init, name="login"),
    path("launch/", views.launch, name="launch"),
    path("jwks/", views.jwks, name="jwks"),
    # Pages behind a launch.
    path("link/", views.link, name="link"),
    path("exams/<int:exam_id>/", views.exam_lms, name="exam"),
    path("proctoring/<int:handover_id>/", views.handover, name="handover"),
    # For admins: what to paste into the LMS.
    path("setup/", views.setup, name="setup"),
]
