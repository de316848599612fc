from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from exams import services
from exams.models import Answer, Attempt
from tests.factories import EnrollmentFactory, ExamFactory, proctoring_ready


def test_anonymous_visitors_are_sent_to_log_in(client, paper):
    for url in ["/", f"/exams/{paper.exam.id}/", "/exams/new/"]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    response = client.post(f"/exams/{paper.exam.id}/start/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert not Attempt.objects.exists()


def test_the_student_dashboard_lists_open_upcoming_and_finished_exams(client, paper, alice):
    later = ExamFactory(title="Later", opens_at=timezone.now() + timedelta(days=2))
    EnrollmentFactory(exam=later, student=alice)
    past = ExamFactory(
        title="Past", opens_at=timezone.now() - timedelta(days=3), closes_at=timezone.now() - timedelta(days=2)
    )
    EnrollmentFactory(exam=past, student=alice)
    hidden = ExamFactory(title="Hidden draft", published=False)
    EnrollmentFactory(exam=hidden, student=alice)
    client.force_login(alice)
    response = client.get("/")
    assert response.status_code == 200
    dashboard = response.context["dashboard"]
    assert [r.exam.title for r in dashboard.open] == ["Physics"]
    assert [r.exam.title for r in dashboard.upcoming] == ["Later"]
    assert [r.exam.title for r in dashboard.finished] == ["Past"]
    assert "Hidden draft" not in response.content.decode()


def test_the_exam_page_shows_instructions_and_a_start_button(client, paper, alice):
    client.force_login(alice)
    response = client.get(f"/exams/{paper.exam.id}/")
    assert response.status_code == 200
    assert "Answer every question." in response.content.decode()
    assert "Start exam" in response.content.decode()


def test_an_exam_the_student_is_not_enrolled_in_is_not_found(client, paper, bob):
    client.force_login(bob)
    assert client.get(f"/exams/{paper.exam.id}/").status_code == 404


def test_starting_redirects_to_the_attempt_page(client, paper, alice):
    # The paper is proctored: alice has consented and enrolled her face (tests/exams/test_exam_start_gate.py covers
    # a student who has not).
    proctoring_ready(alice)
    client.force_login(alice)
    response = client.post(f"/exams/{paper.exam.id}/start/")
    attempt = Attempt.objects.get(student=alice)
    assert response.status_code == 302
    assert response["Location"] == f"/attempts/{attempt.id}/"
    # Starting again resumes the same attempt.
    assert client.post(f"/exams/{paper.exam.id}/start/")["Location"] == f"/attempts/{attempt.id}/"


def test_starting_a_closed_exam_explains_why(client, paper, alice):
    paper.exam.opens_at = timezone.now() - timedelta(days=2)
    paper.exam.closes_at = timezone.now() - timedelta(days=1)
    paper.exam.save()
    client.force_login(alice)
    response = client.post(f"/exams/{paper.exam.id}/start/", follow=True)
    assert "This exam closed on" in response.content.decode()
    assert not Attempt.objects.exists()


def test_the_exam_page_renders_the_server_deadline_and_every_question(client, paper, alice):
    attempt = services.attempt_start(exam=paper.exam, student=alice)
    client.force_login(alice)
    response = client.get(f"/attempts/{attempt.id}/")
    body = response.content.decode()
    assert f'data-deadline="{attempt.deadline.isoformat(timespec="milliseconds")}"' in body
    assert "data-server-now=" in body
    assert body.count("<fieldset") >= 3
    assert 'type="radio"' in body and 'type="checkbox"' in body and "<textarea" in body
    assert 'aria-live="polite"' in body
    assert "proctoring/panel.html" in [t.name for t in response.templates]


def test_the_proctoring_panel_is_left_out_when_proctoring_is_off(client, paper, alice):
    paper.exam.proctoring_enabled = False
    paper.exam.save()
    attempt = services.attempt_start(exam=paper.exam, student=alice)
    client.force_login(alice)
    response = client.get(f"/attempts/{attempt.id}/")
    assert "proctoring/panel.html" not in [t.name for t in response.templates]


def test_a_student_cannot_open_another_students_attempt(client, paper, alice, bob):
    attempt = services.attempt_start(exam=paper.exam, student=alice)
    client.force_login(bob)
    assert client.get(f"/attempts/{attempt.id}/").status_code == 404
    assert client.get(f"/attempts/{attempt.id}/results/").status_code == 404
    url = reverse("answer_autosave", args=[attempt.id, paper.short.id])
    assert client.post(url, {"text": "bob was here"}).status_code == 404
    assert client.post(f"/attempts/{attempt.id}/submit/").status_code == 404
    attempt.refresh_from_db()
    assert attempt.status == Attempt.Status.IN_PROGRESS
    assert not Answer.objects.exists()


def test_autosave_saves_one_answer_and_returns_the_time(client, paper, alice):
    attempt = services.attempt_start(exam=paper.exam, student=alice)
    client.force_login(alice)
    url = reverse("answer_autosave", args=[attempt.id, paper.multiple.id])
    response = client.post(url, {"choice": [c.id for c in paper.multiple_right]})
    assert response.status_code == 200
    data = response.json()
    assert data["ok"] is True and data["saved_at"] and data["server_now"]
    assert set(Answer.objects.get(question=paper.multiple).selected_choices.all()) == set(paper.multiple_right)


def test_autosave_explains_a_refused_answer(client, paper, alice):
    attempt = services.attempt_start(exam=paper.exam, student=alice)
    client.force_login(alice)
    url = reverse("answer_autosave", args=[attempt.id, paper.single.id])
    response = client.post(url, {"choice": [paper.single_right.id, paper.single_wrong.id]})
    assert response.status_code == 400
    assert response.json()["message"] == "This question takes one answer only."


def test_autosave_after_submitting_tells_the_page_to_lock(client, paper, alice):
    attempt = services.attempt_submit(attempt=services.attempt_start(exam=paper.exam, student=alice))
    client.force_login(alice)
    response = client.post(reverse("answer_autosave", args=[attempt.id, paper.short.id]), {"text": "more"})
    assert response.status_code == 409
    assert response.json()["locked"] is True
    assert response.json()["results_url"] == f"/attempts/{attempt.id}/results/"


def test_autosave_needs_the_csrf_token(paper, alice):
    from django.test import Client

    attempt = services.attempt_start(exam=paper.exam, student=alice)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    response = strict.post(reverse("answer_autosave", args=[attempt.id, paper.short.id]), {"text": "x"})
    assert response.status_code == 403


def test_without_javascript_the_form_saves_every_answer(client, paper, alice):
    attempt = services.attempt_start(exam=paper.exam, student=alice)
    client.force_login(alice)
    response = client.post(
        f"/attempts/{attempt.id}/",
        {
            f"q-{paper.single.id}": str(paper.single_right.id),
            f"q-{paper.multiple.id}": [str(c.id) for c in paper.multiple_right],
            f"q-{paper.short.id}": "Scattering.",
            "action": "save",
        },
        follow=True,
    )
    assert "Your answers were saved at" in response.content.decode()
    assert Answer.objects.filter(attempt=attempt).count() == 3
    assert Answer.objects.get(question=paper.short).text == "Scattering."


def test_without_javascript_review_leads_to_a_confirmation_page_then_results(client, paper, alice):
    attempt = services.attempt_start(exam=paper.exam, student=alice)
    client.force_login(alice)
    response = client.post(
        f"/attempts/{attempt.id}/", {f"q-{paper.single.id}": str(paper.single_right.id), "action": "review"}
    )
    assert response["Location"] == f"/attempts/{attempt.id}/submit/"
    page = client.get(response["Location"]).content.decode()
    assert "You have answered 1 of 3 questions." in page
    response = client.post(f"/attempts/{attempt.id}/submit/", follow=True)
    assert response.redirect_chain[-1][0] == f"/attempts/{attempt.id}/results/"
    assert "1 of 6 points" in response.content.decode()


def test_the_results_page_marks_written_answers_as_pending_manual_grading(client, paper, alice):
    attempt = services.attempt_start(exam=paper.exam, student=alice)
    services.answer_save(attempt=attempt, question=paper.short, text="Because.")
    services.attempt_submit(attempt=attempt)
    client.force_login(alice)
    body = client.get(f"/attempts/{attempt.id}/results/").content.decode()
    assert "Pending manual grading" in body


def test_submitting_with_json_returns_the_results_address(client, paper, alice):
    attempt = services.attempt_start(exam=paper.exam, student=alice)
    client.force_login(alice)
    response = client.post(f"/attempts/{attempt.id}/submit/", HTTP_ACCEPT="application/json")
    assert response.json()["results_url"] == f"/attempts/{attempt.id}/results/"
    # Idempotent over HTTP too.
    again = client.post(f"/attempts/{attempt.id}/submit/", HTTP_ACCEPT="application/json")
    assert again.json()["status"] == "submitted"


def test_opening_an_overdue_attempt_expires_it_and_shows_the_results(client, paper, alice):
    attempt = services.attempt_start(exam=paper.exam, student=alice)
    Attempt.objects.filter(pk=attempt.pk).update(deadline=timezone.now() - timedelta(minutes=1))
    client.force_login(alice)
    response = client.get(f"/attempts/{attempt.id}/")
    assert response["Location"] == f"/attempts/{attempt.id}/results/"
    attempt.refresh_from_db()
    assert attempt.status == Attempt.Status.EXPIRED


@pytest.mark.parametrize("path", ["/", "/exams/{exam}/"])
def test_an_instructor_gets_their_own_pages_not_the_student_ones(client, paper, ivan, path):
    client.force_login(ivan)
    response = client.get(path.format(exam=paper.exam.id))
    assert response.status_code == 200
    assert "Physics" in response.content.decode()
