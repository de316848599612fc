"""The tool inside an LMS's iframe (issue 13), in Chromium against the real platform server: framing is refused
unless the LMS origin is in LTI_FRAME_ANCESTORS, and then the whole launch runs inside the course page."""

from __future__ import annotations

import pytest
from lti_tool.models import LtiResourceLink

from exams.lti.models import ExamLink
from tests.browser import launch, require_browser
from tests.factories import ExamFactory
from tests.lti.test_lti_browser import ARTIFACTS

pytestmark = pytest.mark.browser


@pytest.mark.django_db(transaction=True)
def test_the_launch_runs_inside_the_course_page_only_for_allowed_lms_origins(
    live_server, platform_for, settings, monkeypatch
):
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    platform = platform_for(live_server.url)
    exam = ExamFactory(title="Framed quiz", published=True)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            # A first launch records the course link; it is then linked to the exam.
            page.goto(platform.start("alice-sub"))
            expect(page.locator("#refusal")).to_contain_text("has not been set up yet")
            ExamLink.objects.create(resource_link=LtiResourceLink.objects.get(id_on_platform="rl-1"), exam=exam)

            # 1. By default no page may be framed: the browser refuses to show the tool in the course page.
            settings.LTI_FRAME_ANCESTORS = []
            page.goto(f"{platform.url}/course?user=alice-sub&link=rl-1")
            frame = page.frame_locator("#tool")
            expect(frame.get_by_role("heading", level=1)).to_have_count(0, timeout=5000)

            # 2. With the LMS's origin allowed, the login, the launch and the exam page all run in the iframe.
            settings.LTI_FRAME_ANCESTORS = [platform.url]
            page.goto(f"{platform.url}/course?user=alice-sub&link=rl-1")
            expect(frame.get_by_role("heading", level=1)).to_have_text("Framed quiz", timeout=15000)
            expect(frame.locator("#setup")).to_contain_text("Consent to proctoring")
            page.screenshot(path=str(ARTIFACTS / "in-course-iframe-1280.png"))
        finally:
            browser.close()


@pytest.mark.django_db(transaction=True)
def test_with_third_party_cookies_blocked_the_launch_continues_in_a_new_window(
    live_server, platform_for, settings, monkeypatch
):
    """The LMS on another site (127.0.0.1 against the tool's localhost) and Chromium blocking third-party cookies,
    as browsers increasingly do: inside the iframe the login page finds it cannot keep the launch's cookie and says
    so, and the new window it offers completes the launch as a first-party page."""
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    platform = platform_for(live_server.url, host="127.0.0.1")
    settings.LTI_FRAME_ANCESTORS = [platform.url]
    exam = ExamFactory(title="Framed quiz", published=True)
    with sync_playwright() as playwright:
        browser = launch(playwright, "--test-third-party-cookie-phaseout")
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(platform.start("alice-sub"))  # top level: records the course link
            ExamLink.objects.create(resource_link=LtiResourceLink.objects.get(id_on_platform="rl-1"), exam=exam)
            page.goto(f"{platform.url}/course?user=alice-sub&link=rl-1")
            frame = page.frame_locator("#tool")
            expect(frame.locator("#lti-login-status")).to_have_text("This page cannot sign you in inside your course.")
            new_window = frame.get_by_role("link", name="Open in a new window")
            assert "lti1p3_new_window=1" in new_window.get_attribute("href")
            page.screenshot(path=str(ARTIFACTS / "cookies-blocked-1280.png"))
            with page.context.expect_page() as opened:
                new_window.click()
            expect(opened.value.get_by_role("heading", level=1)).to_have_text("Framed quiz", timeout=15000)
        finally:
            browser.close()
