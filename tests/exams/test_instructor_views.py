from __future__ import annotations

import pytest

from exams import services
from exams.models import Answer, Exam, Question
from proctoring import rules
from tests.factories import AdminFactory, InstructorFactory, StudentFactory


@pytest.fixture
def charlie(db):
    return InstructorFactory(username="charlie")


def test_an_instructor_sees_only_their_own_exams_on_the_dashboard(client, paper, charlie):
    services.exam_publish(exam=paper.exam)
    client.force_login(charlie)
    assert "Physics" not in client.get("/").content.decode()


@pytest.mark.parametrize(
    "url",
    [
        "/exams/{exam}/",
        "/exams/{exam}/edit/",
        "/exams/{exam}/students/",
        "/exams/{exam}/questions/new/",
        "/exams/{exam}/questions/{question}/edit/",
    ],
)
def test_an_instructor_cannot_see_another_instructors_exam(client, paper, charlie, url):
    client.force_login(charlie)
    assert client.get(url.format(exam=paper.exam.id, question=paper.single.id)).status_code == 404


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/exams/{exam}/edit/", {"title": "Hijacked"}),
        ("/exams/{exam}/publish/", {"published": "0"}),
        ("/exams/{exam}/questions/{question}/delete/", {}),
        ("/exams/{exam}/questions/{question}/move/", {"direction": "down"}),
        ("/exams/{exam}/students/", {"identifiers": "charlie"}),
    ],
)
def test_an_instructor_cannot_change_another_instructors_exam(client, paper, charlie, url, data):
    client.force_login(charlie)
    response = client.post(url.format(exam=paper.exam.id, question=paper.single.id), data)
    assert response.status_code == 404
    paper.exam.refresh_from_db()
    assert paper.exam.title == "Physics" and paper.exam.published is True
    assert paper.exam.questions.count() == 3


def test_an_admin_can_manage_any_exam(client, paper):
    client.force_login(AdminFactory(username="root"))
    assert client.get(f"/exams/{paper.exam.id}/edit/").status_code == 200
    assert "Physics" in client.get("/").content.decode()


def test_a_student_cannot_reach_the_instructor_pages(client, paper, alice):
    client.force_login(alice)
    assert client.get("/exams/new/").status_code == 403
    assert client.get(f"/exams/{paper.exam.id}/edit/").status_code == 403


def test_an_instructor_creates_an_exam_with_proctoring_settings(client, ivan):
    client.force_login(ivan)
    response = client.post(
        "/exams/new/",
        {
            "title": "Chemistry",
            "instructions": "Calculators allowed.",
            "opens_at": "2030-01-10T09:00",
            "closes_at": "2030-01-10T12:00",
            "duration_minutes": "90",
            "max_attempts": "1",
            "proctoring_enabled": "on",
            "frame_interval_seconds": "3",
            "checks": ["identity_mismatch", "phone_detected"],
            "sensitivity": "low",
            "identity_assurance": "approved",
        },
    )
    exam = Exam.objects.get(title="Chemistry")
    assert response["Location"] == f"/exams/{exam.id}/"
    assert exam.owner == ivan and exam.published is False and exam.duration_minutes == 90
    assert exam.identity_assurance == Exam.IdentityAssurance.APPROVED
    assert "A person approved the enrolment" in client.get(f"/exams/{exam.id}/").content.decode()
    assert exam.proctoring_settings == {
        "frame_interval_ms": 3000,
        "checks": ["identity_mismatch", "phone_detected"],
        "sensitivity": "low",
        "k": 4,
        "n": 5,
    }
    # The proctoring rules read exactly these settings.
    settings = rules.RuleSettings.from_config(exam.proctoring_settings)
    assert settings.checks == {"identity_mismatch", "phone_detected"}
    assert (settings.k, settings.n, settings.frame_interval_ms) == (4, 5, 3000)


def test_editing_an_exam_keeps_sensitivity_set_on_the_review_page(client, paper, ivan):
    paper.exam.proctoring_settings = {"k": 5, "n": 8, "cooldown_s": 9.0, "checks": ["face_not_found"]}
    paper.exam.save()
    client.force_login(ivan)
    page = client.get(f"/exams/{paper.exam.id}/edit/")
    # Proctoring's section of the exam form (proctoring.forms.ExamProctoringForm, added through exams.hooks).
    [proctoring] = page.context["sections"]
    assert proctoring.initial["sensitivity"] == "custom"
    assert "Custom (set on the review page): keep it" in page.content.decode()
    data = {
        "title": "Physics II",
        "opens_at": "2030-01-10T09:00",
        "closes_at": "2030-01-10T12:00",
        "duration_minutes": "30",
        "max_attempts": "1",
        "proctoring_enabled": "on",
        "frame_interval_seconds": "2",
        "checks": ["face_not_found", "looking_away"],
        "sensitivity": "custom",
    }
    paper.exam.identity_assurance = Exam.IdentityAssurance.MATCHED
    paper.exam.save()
    assert client.post(f"/exams/{paper.exam.id}/edit/", data).status_code == 302
    paper.exam.refresh_from_db()
    assert paper.exam.identity_assurance == Exam.IdentityAssurance.MATCHED  # a form without it keeps it
    assert client.post(f"/exams/{paper.exam.id}/edit/", {**data, "identity_assurance": "none"}).status_code == 302
    paper.exam.refresh_from_db()
    assert paper.exam.identity_assurance == Exam.IdentityAssurance.NONE
    settings = paper.exam.proctoring_settings
    assert (settings["k"], settings["n"], settings["cooldown_s"]) == (5, 8, 9.0)
    assert settings["checks"] == ["face_not_found", "looking_away"]


def test_the_exam_form_explains_a_window_that_closes_before_it_opens(client, ivan):
    client.force_login(ivan)
    response = client.post(
        "/exams/new/",
        {
            "title": "Backwards",
            "opens_at": "2030-01-10T12:00",
            "closes_at": "2030-01-10T09:00",
            "duration_minutes": "60",
            "max_attempts": "1",
            "frame_interval_seconds": "2",
            "sensitivity": "medium",
        },
    )
    assert response.status_code == 200
    assert "The exam must close after it opens." in response.content.decode()
    assert not Exam.objects.filter(title="Backwards").exists()


def test_an_instructor_adds_a_multiple_choice_question(client, paper, ivan):
    client.force_login(ivan)
    data = {
        "kind": "multiple",
        "text": "Which are even?",
        "points": "2",
        "choices-TOTAL_FORMS": "3",
        "choices-INITIAL_FORMS": "0",
        "choices-0-text": "4",
        "choices-0-is_correct": "on",
        "choices-1-text": "7",
        "choices-2-text": "",
    }
    response = client.post(f"/exams/{paper.exam.id}/questions/new/", data)
    question = paper.exam.questions.get(text="Which are even?")
    assert response.status_code == 302
    assert [(c.text, c.is_correct) for c in question.choices.all()] == [("4", True), ("7", False)]


def test_a_question_without_a_correct_choice_is_refused_with_a_reason(client, paper, ivan):
    client.force_login(ivan)
    data = {
        "kind": "single",
        "text": "Pick one",
        "points": "1",
        "choices-TOTAL_FORMS": "2",
        "choices-INITIAL_FORMS": "0",
        "choices-0-text": "A",
        "choices-1-text": "B",
    }
    response = client.post(f"/exams/{paper.exam.id}/questions/new/", data)
    assert response.status_code == 200
    assert "Mark exactly one choice as correct" in response.content.decode()


def test_enrolling_by_paste_reports_unknown_entries(client, paper, ivan):
    StudentFactory(username="dana")
    client.force_login(ivan)
    response = client.post(f"/exams/{paper.exam.id}/students/", {"identifiers": "dana, zed"}, follow=True)
    body = response.content.decode()
    assert "Enrolled 1: dana." in body
    assert "No account found for: zed." in body
    assert paper.exam.enrollments.filter(student__username="dana").exists()


def test_publishing_and_unpublishing(client, paper, ivan):
    client.force_login(ivan)
    client.post(f"/exams/{paper.exam.id}/publish/", {"published": "0"})
    paper.exam.refresh_from_db()
    assert paper.exam.published is False
    client.post(f"/exams/{paper.exam.id}/publish/", {"published": "1"})
    paper.exam.refresh_from_db()
    assert paper.exam.published is True


def test_the_instructor_sees_attempts_and_grades_a_written_answer(client, paper, ivan, alice):
    attempt = services.attempt_start(exam=paper.exam, student=alice)
    answer = services.answer_save(attempt=attempt, question=paper.short, text="Rayleigh.")
    services.attempt_submit(attempt=attempt)
    client.force_login(ivan)
    manage = client.get(f"/exams/{paper.exam.id}/").content.decode()
    assert "needs grading" in manage
    review_url = f"/exams/{paper.exam.id}/attempts/{attempt.id}/"
    assert "Rayleigh." in client.get(review_url).content.decode()
    response = client.post(
        review_url, {"answer": answer.id, f"a{answer.id}-points": "3", f"a{answer.id}-feedback": "Exactly."}
    )
    assert response.status_code == 302
    attempt.refresh_from_db()
    assert attempt.score == 3 and attempt.fully_graded is True
    assert Answer.objects.get(pk=answer.pk).feedback == "Exactly."


def test_a_grade_above_the_questions_points_is_refused(client, paper, ivan, alice):
    attempt = services.attempt_start(exam=paper.exam, student=alice)
    answer = services.answer_save(attempt=attempt, question=paper.short, text="Rayleigh.")
    services.attempt_submit(attempt=attempt)
    client.force_login(ivan)
    response = client.post(
        f"/exams/{paper.exam.id}/attempts/{attempt.id}/",
        {"answer": answer.id, f"a{answer.id}-points": "9"},
        follow=True,
    )
    assert "Points must be between 0 and 3" in response.content.decode()
    assert Answer.objects.get(pk=answer.pk).points_awarded is None


def test_another_instructor_cannot_review_or_grade_an_attempt(client, paper, alice, charlie):
    attempt = services.attempt_submit(attempt=services.attempt_start(exam=paper.exam, student=alice))
    client.force_login(charlie)
    assert client.get(f"/exams/{paper.exam.id}/attempts/{attempt.id}/").status_code == 404


def test_questions_can_be_reordered(client, paper, ivan):
    client.force_login(ivan)
    client.post(f"/exams/{paper.exam.id}/questions/{paper.short.id}/move/", {"direction": "up"})
    assert list(paper.exam.questions.values_list("kind", flat=True)) == [
        Question.Kind.SINGLE,
        Question.Kind.SHORT,
        Question.Kind.MULTIPLE,
    ]
