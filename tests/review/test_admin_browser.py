"""The admin pages an administrator uses on exam day, in Chromium at laptop width: the flagged sessions with their
thumbnails, a session, the flags and the users, each checked with axe-core (no critical or serious finding)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import assert_accessible, launch, require_browser
from tests.factories import DEFAULT_PASSWORD

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "review"


@pytest.mark.browser
def test_the_admins_exam_day_pages_pass_the_accessibility_check(
    transactional_db, live_server, monkeypatch, root, alice_attempt, bob_attempt
):
    require_browser()
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    session = alice_attempt.proctoring_sessions.first()
    pages = {
        "flagged sessions": "/admin/proctoring/proctoringsession/?flagged=yes",
        "a flagged session": f"/admin/proctoring/proctoringsession/{session.pk}/change/",
        "flags": "/admin/proctoring/flag/",
        "users": "/admin/accounts/user/",
    }
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(15_000)
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "root")
        page.fill("#id_password", DEFAULT_PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url(f"{live_server.url}/admin/")
        for name, path in pages.items():
            page.goto(f"{live_server.url}{path}")
            page.screenshot(path=str(ARTIFACTS / f"admin-{name.replace(' ', '-')}.png"), full_page=True)
            if name == "flagged sessions":
                # At 1280 px the evidence is on screen, not past the right edge of the table.
                for image in page.locator("#result_list img").all():
                    box = image.bounding_box()
                    assert box is not None and box["x"] + box["width"] <= 1280, box
                assert page.locator("#result_list").get_by_text("+2 more").is_visible()
            assert_accessible(page, f"the admin's {name}")
        browser.close()
