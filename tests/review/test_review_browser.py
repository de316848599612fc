"""charlie reviews alice's proctored attempt in Chromium: finds it by priority, reads the timeline and the evidence,
reaches a flag from the timeline with the keyboard, confirms one flag and dismisses another, then changes the
exam's sensitivity and reads the preview before applying it.

The attempt is what the live stream stores (tests/review/builders.py: the real rules over scripted measurements,
real JPEG snapshots from public-domain photos). Screenshots go to test-artifacts/review/ (look at them).
pytest-django's live_server is a threaded WSGI server: the review pages need no WebSocket.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from proctoring.models import EvidenceView, Flag
from proctoring.review.models import FlagDecision, FlagWithdrawal
from tests.browser import assert_accessible, launch, require_browser
from tests.factories import DEFAULT_PASSWORD

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "review"


def _tab_to(page, selector: str, *, limit: int = 80) -> None:
    for _ in range(limit):
        if page.evaluate("(s) => !!document.activeElement && document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} never got the focus after {limit} presses of Tab")


@pytest.mark.browser
def test_charlie_reviews_alices_flags_and_previews_new_sensitivity(
    transactional_db, live_server, monkeypatch, charlie, exam, alice_attempt, bob_attempt
):
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    flags = {f.kind: f for f in Flag.objects.filter(session__attempt=alice_attempt)}
    # A model version as long as a real pack's (over 300 characters, with no space to break at).
    long_version = "pack=default@2026.11.4," + ",".join(f"{role}=model-{role}-" + "x" * 50 for role in "abcde")
    Flag.objects.filter(pk=flags["phone_detected"].pk).update(model_version=long_version)

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.set_default_timeout(15_000)
        try:
            # 1. Log in and open the exam's attempts: alice (an identity mismatch among her flags) comes first.
            page.goto(f"{live_server.url}/accounts/login/")
            page.fill("#id_username", "charlie")
            page.fill("#id_password", DEFAULT_PASSWORD)
            page.keyboard.press("Enter")
            page.wait_for_url(f"{live_server.url}/")
            # The review index: each exam's actions stay inside its row, at laptop widths too.
            page.goto(f"{live_server.url}/review/")
            for width in (1280, 1024):
                page.set_viewport_size({"width": width, "height": 900})
                row = page.locator("tbody tr").first.bounding_box()
                for link in page.locator("tbody tr").first.get_by_role("link").all():
                    box = link.bounding_box()
                    assert row["y"] <= box["y"] and box["y"] + box["height"] <= row["y"] + row["height"] + 1, (row, box)
                    assert box["x"] + box["width"] <= width
            assert_accessible(page, "the review index")
            page.set_viewport_size({"width": 1200, "height": 1000})
            page.goto(f"{live_server.url}/review/exams/{exam.pk}/")
            rows = page.locator("table.attempts tbody tr")
            expect(rows).to_have_count(2)
            expect(rows.nth(0)).to_contain_text("Alice Adams")
            expect(rows.nth(0)).to_contain_text("High")
            page.screenshot(path=str(ARTIFACTS / "attempts.png"), full_page=True)
            assert_accessible(page, "the exam's attempts")
            # At laptop widths the way into each attempt is on screen: the student's name links to the review.
            for width in (1280, 1024):
                page.set_viewport_size({"width": width, "height": 900})
                link = rows.nth(0).locator("th a")
                expect(link).to_contain_text("Alice Adams (alice)")
                box = link.bounding_box()
                assert box is not None and 0 <= box["x"] and box["x"] + box["width"] <= width, (width, box)
                page.screenshot(path=str(ARTIFACTS / f"attempts-{width}.png"))
            page.set_viewport_size({"width": 1200, "height": 1000})
            rows.nth(0).get_by_role("link", name="Review the attempt of Alice Adams (alice)").click()

            # 2. The review page: timeline and evidence. Every snapshot loads through the private view.
            expect(page.locator("h1")).to_contain_text("attempt 1 of Organic Chemistry Final")
            timeline = page.locator("#timeline svg")
            expect(timeline).to_be_visible()
            expect(page.locator("a.tl-flag")).to_have_count(5)
            images = page.locator(".gallery img")
            expect(images).to_have_count(5)
            # Evidence loads lazily, when it scrolls into view: only what is looked at is fetched (and audited).
            for i in range(5):
                images.nth(i).scroll_into_view_if_needed()
                page.wait_for_function("(i) => i.complete && i.naturalWidth > 0", arg=images.nth(i).element_handle())
            page.locator("#timeline").screenshot(path=str(ARTIFACTS / "timeline.png"))
            # At laptop widths the evidence captions and the full model version (opened) stay inside their card.
            phone_card = page.locator(f"#flag-{flags['phone_detected'].pk}")
            phone_card.locator("details.model-version summary").click()
            for width in (1280, 1024):
                page.set_viewport_size({"width": width, "height": 900})
                for card in page.locator("article.flag").all():
                    outer = card.bounding_box()
                    for part in card.locator("figcaption, details.model-version code").all():
                        box = part.bounding_box()
                        if box is None:  # the folded details' full text
                            continue
                        assert box["x"] >= outer["x"] and box["x"] + box["width"] <= outer["x"] + outer["width"] + 1, (
                            width, part.inner_text()[:60], box, outer)  # fmt: skip
                phone_card.screenshot(path=str(ARTIFACTS / f"evidence-card-{width}.png"))
            page.set_viewport_size({"width": 1200, "height": 1000})
            assert_accessible(page, "an attempt's review")
            assert EvidenceView.objects.filter(viewer=charlie).count() >= 5

            # 3. From the timeline to a flag with the keyboard.
            _tab_to(page, "a.tl-flag")
            first = page.evaluate("document.activeElement.getAttribute('href')")
            page.keyboard.press("Enter")
            page.wait_for_function("(h) => location.hash === h", arg=first)
            expect(page.locator(first)).to_be_in_viewport()

            # 4. Confirm the phone flag and dismiss looking away, each with a note.
            phone = page.locator(f"#flag-{flags['phone_detected'].pk}")
            phone.get_by_label(f"Note for flag {flags['phone_detected'].pk}").fill("Phone visible in her hand.")
            phone.get_by_role("button", name=f"Confirm flag {flags['phone_detected'].pk}").click()
            expect(page.locator(".messages")).to_contain_text("is now confirmed")
            expect(page.locator(f"#flag-{flags['phone_detected'].pk} h3")).to_contain_text("Confirmed")
            away = page.locator(f"#flag-{flags['looking_away'].pk}")
            away.get_by_label(f"Note for flag {flags['looking_away'].pk}").fill("Reading the allowed formula sheet.")
            away.get_by_role("button", name=f"Dismiss flag {flags['looking_away'].pk}").click()
            expect(page.locator(".messages")).to_contain_text("is now dismissed")
            expect(page.locator(f"#flag-{flags['looking_away'].pk} h3")).to_contain_text("Dismissed")
            page.locator("#timeline").screenshot(path=str(ARTIFACTS / "timeline-reviewed.png"))
            page.screenshot(path=str(ARTIFACTS / "attempt.png"), full_page=True)

            # 5. Change sensitivity: face-not-found no longer counts, the phone needs 0.8. Preview, then apply.
            page.goto(f"{live_server.url}/review/exams/{exam.pk}/rescore/")
            page.get_by_label("Face not found").uncheck()
            page.get_by_label("Phone detector threshold (0.01 to 1)").fill("0.8")
            page.get_by_role("button", name="Preview changes").click()
            preview = page.locator("#preview")
            expect(preview).to_be_visible()
            totals = preview.locator("table.preview-totals")
            expect(totals.locator("tr", has_text="Face not found")).to_contain_text("-1 (fewer)")
            expect(totals.locator("tr", has_text="Phone detected")).to_contain_text("-1 (fewer)")  # bob's goes
            attempts = preview.locator("table.preview-attempts")
            expect(attempts.locator("tr", has_text="Alice")).to_contain_text("Face not found: 1 → 0")
            expect(attempts.locator("tr", has_text="Alice")).to_contain_text("Phone detected: 1 → 1")
            expect(attempts.locator("tr", has_text="Alice")).to_contain_text("the new settings would not raise it")
            expect(attempts.locator("tr", has_text="Bob")).to_contain_text("Phone detected: 1 → 0")
            preview.screenshot(path=str(ARTIFACTS / "rescore-preview.png"))
            page.screenshot(path=str(ARTIFACTS / "rescore.png"), full_page=True)
            assert not FlagWithdrawal.objects.exists()  # a preview changes nothing
            page.get_by_role("button", name="Apply these settings").click()
            expect(page.locator(".messages")).to_contain_text("New sensitivity applied")

            # 6. Alice sees her confirmed flag, in the wording of the review ("in k of the last n checked frames"),
            # and answers it in a labelled box, aligned with its label, at laptop widths too.
            student = browser.new_page(viewport={"width": 1280, "height": 900})
            student.on("pageerror", lambda error: errors.append(str(error)))
            student.goto(f"{live_server.url}/accounts/login/")
            student.fill("#id_username", "alice")
            student.fill("#id_password", DEFAULT_PASSWORD)
            student.keyboard.press("Enter")
            student.wait_for_url(f"{live_server.url}/")
            student.goto(f"{live_server.url}/my/attempts/{alice_attempt.pk}/flags/")
            card = student.locator(f"#flag-{flags['phone_detected'].pk}")
            expect(card).to_contain_text("checked frames")
            box = card.get_by_label("Your response to this flag")
            for width in (1280, 1024):
                student.set_viewport_size({"width": width, "height": 900})
                label, field = card.locator("label").bounding_box(), box.bounding_box()
                assert abs(label["x"] - field["x"]) <= 1 and field["x"] + field["width"] <= width, (width, label, field)
                student.screenshot(path=str(ARTIFACTS / f"student-flags-{width}.png"), full_page=True)
            assert_accessible(student, "the student's confirmed flags")
            box.fill("My phone was face down; I did not use it.")
            card.get_by_role("button", name="Send response").click()
            expect(student.locator(f"#flag-{flags['phone_detected'].pk} blockquote")).to_contain_text("face down")
        finally:
            browser.close()

    assert errors == []
    assert FlagDecision.objects.filter(actor=charlie, action="confirm", flag=flags["phone_detected"]).exists()
    assert FlagDecision.objects.filter(actor=charlie, action="dismiss", note__startswith="Reading").exists()
    assert Flag.objects.get(pk=flags["phone_detected"].pk).status == "confirmed"
    withdrawn = set(FlagWithdrawal.objects.values_list("flag__kind", "flag__session__attempt"))
    assert withdrawn == {("face_not_found", alice_attempt.pk), ("phone_detected", bob_attempt.pk)}
