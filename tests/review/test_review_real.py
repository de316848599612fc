"""Review of the scripted webcam exam recorded through the real pipeline (tests/review/real_session.py: real models
on the e2e test's real photos, stored by the live session service): re-scoring reproduces the live flags exactly,
and charlie decides every kind of flag in Chromium with the evidence in front of him.

Screenshots: test-artifacts/review/real-timeline.png, real-attempt.png, real-preview.png (look at them).
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from proctoring.models import EvidenceView, Flag, Observation
from proctoring.review.models import FlagDecision, FlagWithdrawal
from proctoring.review.selectors import attempt_review_data
from proctoring.review.services.rescoring import rescore_preview
from tests.browser import launch, require_browser
from tests.conftest import service_missing
from tests.factories import DEFAULT_PASSWORD
from tests.review.real_session import missing, record_scripted_exam
from tests.review.test_review_browser import ARTIFACTS

pytestmark = pytest.mark.slow


@pytest.fixture
def scripted_attempt(exam, alice):
    reason = missing()
    if reason:
        service_missing(reason)
    return record_scripted_exam(exam=exam, student=alice)


@pytest.mark.django_db
def test_the_scripted_exam_raises_each_kind_and_rescoring_with_its_own_settings_changes_nothing(exam, scripted_attempt):
    flags = list(Flag.objects.filter(session__attempt=scripted_attempt).order_by("started_seq", "kind"))
    kinds = {f.kind for f in flags}
    assert {"identity_mismatch", "multiple_faces", "face_not_found", "phone_detected"} <= kinds
    assert all(f.snapshots.count() == 1 and f.model_version for f in flags)
    plan = rescore_preview(exam=exam, config=exam.proctoring_settings)
    row = plan.attempts[0]
    # Re-running the rules over the stored observations gives back exactly what the live run stored.
    assert (row.created, row.updated, row.withdrawn) == (0, 0, 0)
    assert row.before == row.after
    # Phone scores of the real photo are 0.947 to 0.968: a 0.97 threshold removes that flag and nothing else.
    stricter = rescore_preview(exam=exam, config={"phone_threshold": 0.97}).attempts[0]
    assert stricter.before["phone_detected"] == 1 and stricter.after["phone_detected"] == 0
    assert {k: v for k, v in stricter.after.items() if k != "phone_detected"} == {
        k: v for k, v in stricter.before.items() if k != "phone_detected"
    }


@pytest.mark.django_db
def test_the_timeline_shows_where_the_eyes_looked(client, charlie, scripted_attempt):
    """The iris model reads the main face's eyes where they are clear; the page draws that gaze under attention,
    against the exam's limit, and tabulates it by minute."""
    data = attempt_review_data(attempt=scripted_attempt)
    with_a_face = Observation.objects.filter(session__attempt=scripted_attempt, face_count__gte=1).count()
    assert 0 < len(data.gaze) <= with_a_face
    assert all(0 <= value < 90 for _, value in data.gaze)
    client.force_login(charlie)
    page = client.get(reverse("review:attempt", args=[scripted_attempt.pk])).content.decode()
    assert 'class="tl-gaze"' in page and "Looking away past 20°" in page
    assert "Gaze by minute" in page and "No gaze measured." not in page


@pytest.mark.browser
def test_charlie_decides_the_flags_of_the_scripted_webcam_exam(
    transactional_db, live_server, monkeypatch, charlie, exam, scripted_attempt
):
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    flags = list(Flag.objects.filter(session__attempt=scripted_attempt).order_by("started_at", "id"))
    identity = next(f for f in flags if f.kind == "identity_mismatch")
    nobody = next(f for f in flags if f.kind == "face_not_found")

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.set_default_timeout(15_000)
        try:
            page.goto(f"{live_server.url}/accounts/login/")
            page.fill("#id_username", "charlie")
            page.fill("#id_password", DEFAULT_PASSWORD)
            page.keyboard.press("Enter")
            page.wait_for_url(f"{live_server.url}/")
            page.get_by_role("link", name="Review", exact=True).click()
            page.get_by_role("link", name="Attempts and flags of Organic Chemistry Final").click()
            page.get_by_role("link", name="Review the attempt of Alice Adams (alice)").click()

            expect(page.locator("a.tl-flag")).to_have_count(len(flags))
            images = page.locator(".gallery img")
            for i in range(len(flags)):
                images.nth(i).scroll_into_view_if_needed()
                page.wait_for_function("(i) => i.complete && i.naturalWidth > 0", arg=images.nth(i).element_handle())
            page.locator("#timeline").screenshot(path=str(ARTIFACTS / "real-timeline.png"))
            assert EvidenceView.objects.filter(viewer=charlie).count() >= len(flags)

            card = page.locator(f"#flag-{identity.pk}")
            expect(card).to_contain_text("identity similarity")
            card.get_by_label(f"Note for flag {identity.pk}").fill("Not the enrolled student: someone else sat here.")
            card.get_by_role("button", name=f"Confirm flag {identity.pk}").click()
            expect(page.locator(f"#flag-{identity.pk} h3")).to_contain_text("Confirmed")
            card = page.locator(f"#flag-{nobody.pk}")
            card.get_by_label(f"Note for flag {nobody.pk}").fill("Left the desk briefly; allowed break.")
            card.get_by_role("button", name=f"Dismiss flag {nobody.pk}").click()
            expect(page.locator(f"#flag-{nobody.pk} h3")).to_contain_text("Dismissed")
            page.screenshot(path=str(ARTIFACTS / "real-attempt.png"), full_page=True)

            page.goto(f"{live_server.url}/review/exams/{exam.pk}/rescore/")
            page.get_by_label("Phone detector threshold (0.01 to 1)").fill("0.97")
            page.get_by_role("button", name="Preview changes").click()
            totals = page.locator("#preview table.preview-totals")
            expect(totals.locator("tr", has_text="Phone detected")).to_contain_text("-1 (fewer)")
            expect(totals.locator("tr", has_text="Identity mismatch")).to_contain_text("no change")
            page.locator("#preview").screenshot(path=str(ARTIFACTS / "real-preview.png"))
            page.get_by_role("button", name="Apply these settings").click()
            expect(page.locator(".messages")).to_contain_text("New sensitivity applied")
        finally:
            browser.close()
    assert errors == []
    assert FlagDecision.objects.filter(flag=identity, action="confirm", actor=charlie).exists()
    assert FlagDecision.objects.filter(flag=nobody, action="dismiss", actor=charlie).exists()
    assert list(FlagWithdrawal.objects.values_list("flag__kind", flat=True)) == ["phone_detected"]
