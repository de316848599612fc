"""The admin's flagged-session and flag lists decide through the review service: audited, and never silently."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from proctoring.models import Flag, ProctoringSession
from proctoring.review.models import FlagDecision

pytestmark = pytest.mark.django_db


def admin_client(root) -> Client:
    client = Client()
    client.force_login(root)
    return client


def test_root_confirms_the_selected_flags_with_an_audit_entry_each(root, alice_attempt):
    flags = list(Flag.objects.filter(session__attempt=alice_attempt, kind__in=["phone_detected", "multiple_faces"]))
    response = admin_client(root).post(
        reverse("admin:proctoring_flag_changelist"),
        {"action": "confirm_flags", "_selected_action": [f.pk for f in flags]},
        follow=True,
    )
    assert response.status_code == 200
    assert set(Flag.objects.filter(status="confirmed").values_list("pk", flat=True)) == {f.pk for f in flags}
    assert FlagDecision.objects.filter(actor=root, action="confirm").count() == 2


def test_root_dismisses_every_open_flag_of_a_session(root, alice_attempt):
    session = ProctoringSession.objects.get(attempt=alice_attempt)
    admin_client(root).post(
        reverse("admin:proctoring_proctoringsession_changelist"),
        {"action": "dismiss_open_flags", "_selected_action": [session.pk]},
        follow=True,
    )
    assert not Flag.objects.filter(session=session).exclude(status="dismissed").exists()
    assert FlagDecision.objects.filter(actor=root, action="dismiss").count() == 5


def test_the_flag_page_links_to_the_review_page_and_does_not_edit_status_directly(root, alice_attempt):
    flag = Flag.objects.filter(session__attempt=alice_attempt).first()
    client = admin_client(root)
    page = client.get(reverse("admin:proctoring_flag_change", args=[flag.pk])).content.decode()
    assert f"/review/attempts/{alice_attempt.pk}/#flag-{flag.pk}" in page
    assert 'name="status"' not in page


def test_the_flagged_sessions_filters_say_which_status_they_filter(root, alice_attempt):
    page = admin_client(root).get(reverse("admin:proctoring_proctoringsession_changelist")).content.decode()
    for title in ("By session status", "By flag kind", "By flag status"):
        assert title in page, title
    assert page.count("By status") == 0
    filtered = admin_client(root).get(
        reverse("admin:proctoring_proctoringsession_changelist"), {"flags__status": "open"}
    )
    assert filtered.status_code == 200 and "alice" in filtered.content.decode()


def test_the_flagged_sessions_list_shows_three_thumbnails_a_count_of_the_rest_in_a_fixed_number_of_queries(
    root, alice_attempt, bob_attempt, django_assert_max_num_queries
):
    client = admin_client(root)
    client.get(reverse("admin:proctoring_proctoringsession_changelist"))  # warm the session and the permissions
    with django_assert_max_num_queries(12):
        page = client.get(reverse("admin:proctoring_proctoringsession_changelist")).content.decode()
    assert page.count('alt="Evidence snapshot') == 3 + 1  # alice: 3 of her 5, bob: his 1
    assert "+2 more" in page
    assert "analysed" in page and "shed" in page  # the stream's counters, in one column
