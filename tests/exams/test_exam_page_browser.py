"""student1 sits the demo exam in Chromium with the keyboard only.

Logs in, starts the demo exam, answers every question from the keyboard, sees the "Saved at" state, reloads and
finds the timer still running down and the answers kept, submits through the confirmation dialog and sees the
score. Screenshots go to test-artifacts/exams/ (look at them).

pytest-django's live_server is a threaded WSGI server; Playwright's sync API runs in the test's own thread. The
proctoring panel needs a WebSocket server and a webcam, which this test is not about (tests/e2e covers them), so
the demo exam's proctoring is switched off here.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.core.management import call_command

from exams.models import Attempt, Exam
from tests.browser import launch, require_browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "exams"


def _tab_to(page, selector: str, *, text: str = "", limit: int = 40, key: str = "Tab") -> None:
    """Press Tab until the focused element matches selector (and shows text): how a keyboard user gets there."""
    check = "([s, t]) => { const e = document.activeElement; return !!e && e.matches(s) && e.innerText.trim() === t; }"
    if not text:
        check = "([s]) => !!document.activeElement && document.activeElement.matches(s)"
    for _ in range(limit):
        if page.evaluate(check, [selector, text]):
            return
        page.keyboard.press(key)
    focused = page.evaluate("document.activeElement && document.activeElement.outerHTML.slice(0, 200)")
    raise AssertionError(f"{selector} never got the focus after {limit} presses of {key}; focus is on {focused}")


def _seconds(clock: str) -> int:
    parts = [int(p) for p in clock.split(":")]
    return sum(value * 60**i for i, value in enumerate(reversed(parts)))


@pytest.mark.browser
def test_student1_sits_the_demo_exam_with_the_keyboard_only(transactional_db, live_server, monkeypatch):
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the ORM calls below are plain synchronous ones.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    call_command("seed_demo", "--password", "demo-pass-123", stdout=open(os.devnull, "w"))
    Exam.objects.filter(title="Demo exam").update(proctoring_enabled=False)

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.set_default_timeout(15_000)
        try:
            # 1. Log in from the keyboard.
            page.goto(f"{live_server.url}/accounts/login/")
            _tab_to(page, "#id_username")
            page.keyboard.type("student1")
            _tab_to(page, "#id_password")
            page.keyboard.type("demo-pass-123")
            page.keyboard.press("Enter")
            page.wait_for_url(f"{live_server.url}/")

            # 2. Open the demo exam from the dashboard and start it.
            _tab_to(page, "a", text="Open Demo exam")
            page.keyboard.press("Enter")
            page.wait_for_url(re.compile(r"/exams/\d+/$"))
            _tab_to(page, "button", text="Start exam")
            page.keyboard.press("Enter")
            page.wait_for_url(re.compile(r"/attempts/\d+/$"))
            attempt = Attempt.objects.get(student__username="student1")
            expect(page.locator("#save-hint")).to_have_text("Your answers save automatically as you work.")
            expect(page.locator("#save-status")).to_have_text("")

            # 3. Answer from the keyboard. Q1 single (Venus, Mercury, …): Tab lands on the first radio, the arrow
            #    key moves to and checks Mercury.
            _tab_to(page, "fieldset:nth-of-type(1) input[type=radio]")
            page.keyboard.press("ArrowDown")
            expect(page.get_by_label("Mercury")).to_be_checked()
            # Q2 multiple (2, 9, 11, 15): Space on 2, Tab past 9, Space on 11.
            _tab_to(page, "fieldset:nth-of-type(2) input[type=checkbox]")
            page.keyboard.press("Space")
            page.keyboard.press("Tab")
            page.keyboard.press("Tab")
            page.keyboard.press("Space")
            expect(page.get_by_label("11", exact=True)).to_be_checked()
            expect(page.get_by_label("9", exact=True)).not_to_be_checked()
            # Q3 single (90, 100, 120 °C).
            _tab_to(page, "fieldset:nth-of-type(3) input[type=radio]")
            page.keyboard.press("ArrowDown")
            expect(page.get_by_label("100 °C")).to_be_checked()
            # Q4 short answer.
            _tab_to(page, "fieldset:nth-of-type(4) textarea")
            page.keyboard.type("Air scatters blue light more than red light.")
            expect(page.locator("#save-status")).to_have_text(re.compile(r"^Saved at \d\d:\d\d:\d\d$"))
            assert page.get_attribute("#save-status", "role") == "status"
            page.screenshot(path=str(ARTIFACTS / "1-answered.png"), full_page=True)

            # 4. Reload: the timer carries on from the server's deadline and the answers are still there.
            before = _seconds(page.inner_text("#timer"))
            page.wait_for_timeout(2100)
            page.reload()
            after = _seconds(page.inner_text("#timer"))
            assert 0 < before - after < 60, (before, after)
            assert 25 * 60 < after <= 30 * 60
            page.wait_for_timeout(1100)
            assert _seconds(page.inner_text("#timer")) < after  # still counting down after the reload
            expect(page.get_by_label("Mercury")).to_be_checked()
            expect(page.get_by_label("2", exact=True)).to_be_checked()
            expect(page.get_by_label("11", exact=True)).to_be_checked()
            expect(page.get_by_label("100 °C")).to_be_checked()
            expect(page.locator("fieldset:nth-of-type(4) textarea")).to_have_value(
                "Air scatters blue light more than red light."
            )

            # 5. Submit through the confirmation dialog: focus starts on "Keep working", Tab to "Submit now".
            _tab_to(page, "#submit-open")
            page.keyboard.press("Enter")
            expect(page.locator("#confirm-dialog")).to_be_visible()
            expect(page.locator("#confirm-summary")).to_contain_text("You have answered 4 of 4 questions")
            assert page.evaluate("document.activeElement.id") == "confirm-cancel"
            page.screenshot(path=str(ARTIFACTS / "2-confirm.png"))
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.id") == "confirm-submit"
            page.keyboard.press("Enter")

            # 6. Results: the choice questions are scored, the written answer waits for the instructor.
            page.wait_for_url(f"{live_server.url}/attempts/{attempt.id}/results/")
            expect(page.locator("#score")).to_have_text("4 of 7 points")
            expect(page.locator("main")).to_contain_text("Pending manual grading")
            page.screenshot(path=str(ARTIFACTS / "3-results.png"), full_page=True)
        finally:
            browser.close()

    assert not errors, errors
    attempt.refresh_from_db()
    assert attempt.status == Attempt.Status.SUBMITTED
    assert attempt.score == 4 and attempt.fully_graded is False


# Shifts the page's clock two hours ahead, as on a student's badly set computer.
SKEWED_CLOCK = """
(() => {
  const realNow = Date.now.bind(Date);
  Date.now = () => realNow() + 2 * 3600 * 1000;
})();
"""


@pytest.mark.browser
def test_the_page_keeps_server_time_retries_lost_saves_and_locks_calmly_at_time_up(
    transactional_db, live_server, monkeypatch
):
    require_browser()
    from datetime import timedelta

    from django.utils import timezone
    from playwright.sync_api import expect, sync_playwright

    from exams import services
    from tests.factories import DEFAULT_PASSWORD

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    call_command("seed_demo", "--password", DEFAULT_PASSWORD, stdout=open(os.devnull, "w"))
    exam = Exam.objects.get(title="Demo exam")
    Exam.objects.filter(pk=exam.pk).update(proctoring_enabled=False)
    from accounts.models import User

    attempt = services.attempt_start(exam=exam, student=User.objects.get(username="student2"))

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        context.add_init_script(SKEWED_CLOCK)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.set_default_timeout(15_000)
        try:
            page.goto(f"{live_server.url}/accounts/login/")
            page.fill("#id_username", "student2")
            page.fill("#id_password", DEFAULT_PASSWORD)
            page.keyboard.press("Enter")
            page.wait_for_url(f"{live_server.url}/")
            # 63 seconds left: the one-minute announcement comes within a few seconds.
            Attempt.objects.filter(pk=attempt.pk).update(deadline=timezone.now() + timedelta(seconds=63))
            page.goto(f"{live_server.url}/attempts/{attempt.id}/")
            # The client's clock is two hours fast, yet the countdown shows the server's minute.
            assert 55 <= _seconds(page.inner_text("#timer")) <= 63
            expect(page.locator("#timer-announcer")).to_have_text("1 minute left.", timeout=5_000)

            # The network drops: the answer is kept and retried, and the page says so until it is saved.
            context.set_offline(True)
            page.get_by_label("Venus").check()
            expect(page.locator("#save-status")).to_have_text("Not saved — retrying")
            context.set_offline(False)
            expect(page.locator("#save-status")).to_have_text(re.compile(r"^Saved at "), timeout=8_000)

            # Now only 3 seconds are left: the page sends the answer, submits, locks and says so.
            Attempt.objects.filter(pk=attempt.pk).update(deadline=timezone.now() + timedelta(seconds=3))
            page.reload()
            page.get_by_label("Mercury").check()
            expect(page.locator("#time-up")).to_be_visible(timeout=10_000)
            expect(page.locator("#time-up-title")).to_have_text("Time is up")
            expect(page.locator("#time-up-text")).to_contain_text("have been submitted")
            assert page.evaluate("document.activeElement.id") == "time-up"
            expect(page.get_by_label("Venus")).to_be_disabled()
            page.screenshot(path=str(ARTIFACTS / "4-time-up.png"), full_page=True)
            page.get_by_role("link", name="See your results").click()
            expect(page.locator("#score")).to_have_text("1 of 7 points")
        finally:
            browser.close()

    assert not errors, errors
    attempt.refresh_from_db()
    assert attempt.status in (Attempt.Status.SUBMITTED, Attempt.Status.EXPIRED)
    assert attempt.score == 1
