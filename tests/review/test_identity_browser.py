"""The photo ID step, the identity review and the student's identity page in Chromium (issue 11), at 1280 and
1024 px, with axe.

charlie's student alice enrolled (webcam-like versions of the astronaut photo), and her reference photo (the
original) matches. charlie's exam also asks for a photo ID: alice's fake webcam shows her holding up a card printed
with someone else's portrait (Grace Hopper's; tests/idcard.py), so the check is a mismatch. charlie compares the
pictures side by side and approves with a note; alice, who was told what is missing before her exam, can then
start. Real default pack; screenshots in test-artifacts/review/.
"""

# ruff: noqa: F811 - the fixtures imported from test_enrolment are parameters here
from __future__ import annotations

from datetime import timedelta

import cv2
import pytest
from django.utils import timezone

from exams.models import Exam
from proctoring.models import EnrolmentDecision, FaceTemplate
from proctoring.services.consent import consent_record
from proctoring.services.enrolment import face_enrol
from proctoring.services.identity import reference_photo_set
from tests.browser import FAKE_CAMERA_ARGS, assert_accessible, launch, require_browser, sign_in
from tests.e2e.clip import write_y4m
from tests.factories import DEFAULT_PASSWORD, EnrollmentFactory, ExamFactory
from tests.idcard import holding_id, id_card, portrait
from tests.proctoring.test_enrolment import alice_frames, analyzer, evalset  # noqa: F401 - fixtures
from tests.review.test_review_browser import ARTIFACTS


def _inside(page, locator, width: int) -> None:
    box = locator.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (width, box)


@pytest.mark.browser
def test_charlie_compares_the_photos_and_approves_and_alice_can_start(
    transactional_db, live_server, monkeypatch, tmp_path, charlie, alice, alice_frames, analyzer, evalset
):
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    now = timezone.now()
    exam = ExamFactory(
        owner=charlie,
        title="Identity Exam",
        published=True,
        opens_at=now - timedelta(hours=1),
        closes_at=now + timedelta(hours=2),
        identity_assurance=Exam.IdentityAssurance.MATCHED,
        photo_id_required=True,
    )
    EnrollmentFactory(exam=exam, student=alice)
    consent_record(user=alice, accepted=True)
    astronaut, hopper = evalset.load("astronaut"), evalset.load("grace_hopper")
    reference = cv2.imencode(".jpg", astronaut)[1].tobytes()
    reference_photo_set(user=alice, data=reference, added_by=None, source="admin", analyzer=analyzer)
    assert face_enrol(user=alice, images=alice_frames, analyzer=analyzer).template is not None
    assert FaceTemplate.objects.get(user=alice).verification == "matched"
    card = id_card(portrait(hopper, analyzer.detector.detect(hopper)[0].box))
    clip = write_y4m(tmp_path / "holding-id.y4m", [holding_id(astronaut, card)] * 10)

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        webcam = launch(playwright, *FAKE_CAMERA_ARGS, f"--use-file-for-fake-video-capture={clip}")
        try:
            # 1. alice presses Start: first the photo ID, her exam time not started. The camera shows her holding a
            # card up beside her face; the page keeps trying until the server keeps a usable picture.
            student = sign_in(webcam, live_server.url, "alice", DEFAULT_PASSWORD)
            student.on("pageerror", lambda error: errors.append(str(error)))
            student.goto(f"{live_server.url}/exams/{exam.pk}/")
            expect(student.locator("#setup-photo-id")).to_contain_text("Not done yet")
            student.get_by_role("button", name="Start exam").click()
            student.wait_for_url(f"{live_server.url}/proctoring/enrol/id/?*")
            expect(student.locator("#time-not-started")).to_be_visible()
            assert_accessible(student, "the photo ID step")
            student.get_by_role("button", name="Start the camera").click()
            expect(student.locator("#result")).to_contain_text("Your ID photo is saved", timeout=30_000)
            expect(student.get_by_role("link", name="Continue")).to_be_visible()
            for width in (1280, 1024):
                student.set_viewport_size({"width": width, "height": 900})
                _inside(student, student.get_by_role("link", name="Continue"), width)
                student.screenshot(path=str(ARTIFACTS / f"photo-id-student-{width}.png"), full_page=True)
            template = FaceTemplate.objects.get(user=alice)
            assert template.id_photo_path and template.verification == "mismatch"
            assert template.similarity >= template.threshold > template.id_similarity

            # 2. Start again: told calmly what is missing.
            student.goto(f"{live_server.url}/exams/{exam.pk}/")
            expect(student.locator("#setup-photo-id")).to_contain_text("Done")
            student.get_by_role("button", name="Start exam").click()
            student.wait_for_url(f"{live_server.url}/proctoring/identity/exam/{exam.pk}/")
            expect(student.locator("#identity-status")).to_contain_text("a person will compare the photos")
            expect(student.locator("#time-not-started")).to_be_visible()
            for width in (1280, 1024):
                student.set_viewport_size({"width": width, "height": 900})
                _inside(student, student.get_by_role("link", name="Enrol again"), width)
                student.screenshot(path=str(ARTIFACTS / f"identity-student-{width}.png"), full_page=True)
            assert_accessible(student, "the student's identity check")

            # 3. charlie opens the identity review from the review index: the four pictures load, side by side.
            page = sign_in(browser, live_server.url, "charlie", DEFAULT_PASSWORD)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{live_server.url}/review/")
            page.get_by_role("link", name="Identity review").click()
            card = page.locator(f"#enrolment-{alice.pk}")
            expect(card).to_contain_text("Does not match the reference or ID photo")
            for img in card.locator("img").all():
                page.wait_for_function("(i) => i.complete && i.naturalWidth > 0", arg=img.element_handle())
            expect(card.locator("img")).to_have_count(4)
            expect(card.get_by_role("img", name="Alice Adams holding their photo ID")).to_be_visible()
            expect(card.get_by_role("img", name="The face on Alice Adams's photo ID, enlarged")).to_be_visible()
            for width in (1280, 1024):
                page.set_viewport_size({"width": width, "height": 900})
                _inside(page, card.get_by_role("button", name="Approve Alice Adams"), width)
                _inside(page, card.get_by_role("button", name="Reject Alice Adams"), width)
                page.screenshot(path=str(ARTIFACTS / f"identity-review-{width}.png"), full_page=True)
            assert_accessible(page, "the identity review")
            card.get_by_label("Note about Alice Adams (kept in the audit log)").fill(
                "The card she held up is not hers, but the reference photo is: it is her."
            )
            card.get_by_role("button", name="Approve Alice Adams").click()
            expect(page.locator(".messages")).to_contain_text("is now approved by a person")
            expect(page.locator(f"#enrolment-{alice.pk}")).to_contain_text("the reference photo is: it is her.")

            # 4. alice can start now.
            student.goto(f"{live_server.url}/exams/{exam.pk}/")
            expect(student.locator("#setup-identity")).to_contain_text("Done")
        finally:
            webcam.close()
            browser.close()
    assert errors == []
    decision = EnrolmentDecision.objects.get()
    assert (decision.actor, decision.action, decision.from_status) == (charlie, "approve", "mismatch")
