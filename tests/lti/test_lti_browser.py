"""LTI 1.3 end to end in Chromium against a real platform (tests/lti/platform.py, on lti1p3platform) in its own
process (issue 13): the instructor's first launch links the course link to a new exam; the student's launch lands
on that proctored exam with no login; the proctoring hand-over (LtiStartProctoring, set-up, LtiStartAssessment back
to the platform, LtiEndAssessment) round-trips; the graded attempt's score reaches the platform's grade book (AGS);
a flag a person confirms reaches the platform's Assessment Control Service; the roster is read (NRPS); deep linking
adds the exam to the course, and a launch of the new link opens it.
Screenshots in test-artifacts/lti/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lti_tool.models import LtiUser

from exams import services as exam_services
from exams.lti.models import ExamLink, GradeSend, ProctoringHandover
from exams.models import Attempt, Exam, Question
from proctoring.models import Flag, ProctoringSession
from tests.browser import assert_accessible, launch, require_browser
from tests.factories import proctoring_ready

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "lti"
pytestmark = pytest.mark.browser


def user_of(sub: str):
    return LtiUser.objects.get(sub=sub).auth_user


@pytest.mark.django_db(transaction=True)
def test_an_lms_course_uses_a_proctored_exam_end_to_end(live_server, platform_for, monkeypatch):
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    platform = platform_for(live_server.url)
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            # 1. Ivan, an Instructor in the course, clicks the tool: the link is new, so he creates its exam.
            teacher = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            teacher.on("pageerror", lambda error: errors.append(str(error)))
            teacher.goto(platform.start("ivan-sub"))
            teacher.wait_for_url(f"{live_server.url}/lti/link/")
            expect(teacher.get_by_role("heading", level=1)).to_contain_text("Which exam does this course link open?")
            assert_accessible(teacher, "the exam picker")
            teacher.get_by_label("Title").fill("Chemistry midterm")
            teacher.get_by_role("button", name="Create it").click()
            exam = Exam.objects.get(title="Chemistry midterm")
            teacher.wait_for_url(f"{live_server.url}/exams/{exam.pk}/")
            ivan = user_of("ivan-sub")
            assert exam.owner == ivan and ivan.role == "instructor" and not ivan.has_usable_password()
            link = ExamLink.objects.get(exam=exam)
            assert link.resource_link.id_on_platform == "rl-1" and link.lineitem_url.endswith("/lineitems/rl-1")
            question = exam_services.question_create(
                exam=exam, kind=Question.Kind.SINGLE, text="2 + 2?", points=2,
                choices=[exam_services.ChoiceSpec(text="4", is_correct=True),
                         exam_services.ChoiceSpec(text="5", is_correct=False)],
            )  # fmt: skip
            exam_services.exam_publish(exam=exam, published=True)

            # 2. Alice, a Learner, clicks it: signed in, enrolled, on the proctored exam's page.
            student_context = browser.new_context(viewport={"width": 1024, "height": 900})
            student = student_context.new_page()
            student.on("pageerror", lambda error: errors.append(str(error)))
            student.goto(platform.start("alice-sub"))
            student.wait_for_url(f"{live_server.url}/exams/{exam.pk}/")
            expect(student.get_by_role("heading", level=1)).to_contain_text("Chemistry midterm")
            expect(student.locator("#setup")).to_contain_text("Consent to proctoring")
            alice = user_of("alice-sub")
            assert exam.enrollments.filter(student=alice).exists() and alice.get_full_name() == "Alice Adams"
            student.screenshot(path=str(ARTIFACTS / "student-landing-1024.png"), full_page=True)

            # 3. The platform proctors its own assessment with this tool (LTI Proctoring Services): set-up here,
            # then back to the platform with a signed LtiStartAssessment, while this window keeps proctoring.
            student.goto(platform.start("alice-sub", kind="start_proctoring", attempt=1))
            student.wait_for_url(f"{live_server.url}/lti/proctoring/*/")
            expect(student.locator("#handover-next")).to_contain_text("Read the proctoring notice")
            assert_accessible(student, "the proctoring hand-over")
            proctoring_ready(alice)
            student.reload()
            # Last, the system check (nothing recorded), which leads back to the hand-over.
            expect(student.locator("#handover-next")).to_contain_text("camera, light and connection")
            student.get_by_role("link", name="Continue").click()
            student.wait_for_url(f"{live_server.url}/proctoring/check/exam/{exam.pk}/?next=*")
            student.get_by_role("link", name="Continue").click()
            expect(student.get_by_role("heading", level=1)).to_contain_text("You are ready")
            with student_context.expect_page() as lms_tab:
                student.get_by_role("button", name="Open the assessment").click()
            lms = lms_tab.value
            expect(lms.get_by_role("heading", level=1)).to_have_text("The assessment has started")
            started = platform.records()["start_assessments"]
            assert len(started) == 1
            claims = started[0]
            ap = "https://purl.imsglobal.org/spec/lti-ap/claim/"
            assert claims[ap + "session_data"] == "session-alice-sub-1" and claims[ap + "attempt_number"] == 1
            assert claims["https://purl.imsglobal.org/spec/lti/claim/resource_link"] == {"id": "rl-1"}
            handover = ProctoringHandover.objects.get(user=alice)
            assert handover.state == "started" and handover.attempt.status == Attempt.Status.IN_PROGRESS
            assert handover.acs_url.endswith("/acs") and "flag" in handover.acs_actions
            student.wait_for_url(f"{live_server.url}/attempts/{handover.attempt_id}/")

            # She answers here (the platform's own assessment would be elsewhere); the platform ends it.
            exam_services.answer_save(
                attempt=handover.attempt, question=question, choice_ids=[question.choices.get(text="4").pk]
            )
            student.goto(platform.start("alice-sub", kind="end_assessment", attempt=1))
            expect(student.locator("#ended")).to_contain_text("The webcam is off")
            handover.refresh_from_db()
            attempt = handover.attempt
            assert handover.state == "ended" and attempt.status == Attempt.Status.SUBMITTED

            # 4. Grading sent the score to the platform's grade book (AGS).
            scores = platform.records()["scores"]
            assert [(s["userId"], s["scoreGiven"], s["scoreMaximum"], s["gradingProgress"]) for s in scores] == [
                ("alice-sub", 2.0, 2.0, "FullyGraded")
            ]
            assert GradeSend.objects.get(attempt=attempt).status == "sent"

            # 5. A phone flag on her attempt: sent to the platform's Assessment Control Service only once Ivan
            # confirms it, never when the rules raise it.
            session = ProctoringSession.objects.create(attempt=attempt, started_at=attempt.started_at)
            flag = Flag.objects.create(
                session=session, kind="phone_detected", started_at=attempt.started_at, confidence=0.91, threshold=0.5
            )
            assert platform.records()["acs"] == []
            teacher.goto(f"{live_server.url}/review/attempts/{attempt.pk}/")
            card = teacher.locator(f"#flag-{flag.pk}")
            card.get_by_label(f"Note for flag {flag.pk}").fill("A phone on the desk, clearly.")
            card.get_by_role("button", name=f"Confirm flag {flag.pk}").click()
            expect(teacher.locator(f"#flag-{flag.pk} h3")).to_contain_text("Confirmed")
            [control] = platform.records()["acs"]
            assert (control["action"], control["reason_code"], control["user"]["sub"]) == (
                "flag", "phone_detected", "alice-sub"
            )  # fmt: skip
            assert control["attempt_number"] == 1 and control["resource_link"] == {"id": "rl-1"}
            assert "A phone on the desk, clearly." in control["reason_msg"]

            # 6. Ivan reads the course roster (NRPS): Bob is enrolled, the inactive member is not.
            teacher.goto(f"{live_server.url}/lti/exams/{exam.pk}/")
            expect(teacher.locator("#lms-grades")).to_contain_text("Sent")
            teacher.get_by_role("button", name="Enrol the course's students of Chemistry 101").click()
            expect(teacher.locator(".messages")).to_contain_text("2 students, 1 newly enrolled")  # not ivan, not gone
            enrolled = set(exam.enrollments.values_list("student__lti_users__sub", flat=True))
            assert enrolled == {"alice-sub", "bob-sub"}
            teacher.screenshot(path=str(ARTIFACTS / "exam-lms-1280.png"), full_page=True)
            assert_accessible(teacher, "the exam's LMS page")

            # 7. Deep linking: Ivan adds the exam to the course from the LMS's content picker...
            teacher.goto(platform.start("ivan-sub", kind="deep_link"))
            teacher.wait_for_url(f"{live_server.url}/lti/link/")
            teacher.get_by_label("Chemistry midterm").check()
            teacher.get_by_role("button", name="Add this exam").click()
            expect(teacher.get_by_role("heading", level=1)).to_have_text("Added 1 item(s) to the course")
            item = platform.records()["deep_links"][0]
            assert item["type"] == "ltiResourceLink" and item["title"] == "Chemistry midterm"
            # ... and Bob's click on the new link opens it.
            other = browser.new_page()
            other.goto(platform.start("bob-sub", link="dl-1"))
            other.wait_for_url(f"{live_server.url}/exams/{exam.pk}/")
            assert ExamLink.objects.filter(exam=exam).count() == 2
        finally:
            browser.close()
    assert errors == []
