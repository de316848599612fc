"""A proctored exam starts only after consent and a current face enrolment, so no exam time is lost to set-up."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from exams import selectors, services
from exams.models import Attempt
from proctoring.models import FaceTemplate
from proctoring.services.consent import consent_record
from tests.factories import EnrollmentFactory, ExamFactory, proctoring_ready


@pytest.fixture
def start_url(paper) -> str:
    return f"/exams/{paper.exam.id}/start/"


@pytest.fixture
def detail_url(paper) -> str:
    return f"/exams/{paper.exam.id}/"


def test_alice_without_consent_goes_through_consent_enrolment_and_the_check_without_a_detour(
    client, paper, alice, start_url
):
    from urllib.parse import quote

    client.force_login(alice)
    response = client.post(start_url)
    assert response.status_code == 302
    check = f"/proctoring/check/exam/{paper.exam.id}/"
    enrol_then_check = f"/proctoring/enrol/?next={quote(check, safe='')}"
    assert response["Location"] == f"/proctoring/consent/?next={quote(enrol_then_check, safe='')}"
    assert not Attempt.objects.exists()

    page = client.get(response["Location"])
    body = page.content.decode()
    assert "Your exam time has not started." in body  # the message of the start gate
    assert 'id="time-not-started"' in body  # and the banner every set-up page keeps
    assert f'name="next" value="{enrol_then_check}"' in body.replace("&amp;", "&")

    accepted = client.post("/proctoring/consent/", {"decision": "accept", "understood": "on", "next": enrol_then_check})
    assert accepted.status_code == 302, accepted.content.decode()[:500]
    assert accepted["Location"] == enrol_then_check  # straight on to enrolment
    declined = client.post("/proctoring/consent/", {"decision": "decline", "next": enrol_then_check})
    assert 'id="time-not-started"' in declined.content.decode()  # the refusal page keeps it too


def test_alice_with_consent_but_no_face_is_sent_to_enrol_and_then_to_the_check(client, paper, alice, start_url):
    consent_record(user=alice, accepted=True)
    client.force_login(alice)
    response = client.post(start_url)
    check = f"/proctoring/check/exam/{paper.exam.id}/"
    assert response["Location"] == f"/proctoring/enrol/?next=%2Fproctoring%2Fcheck%2Fexam%2F{paper.exam.id}%2F"
    assert not Attempt.objects.exists()
    assert 'id="time-not-started"' in client.get(response["Location"]).content.decode()

    # Once enrolled, the enrolment page's Continue link leads on to the system check, whose last step is Start.
    proctoring_ready(alice)
    body = client.get(response["Location"]).content.decode()
    assert f'id="continue" class="button" href="{check}"' in body


def test_an_enrolment_from_another_embedding_model_must_be_redone_first(client, paper, alice, start_url):
    proctoring_ready(alice)
    FaceTemplate.objects.filter(user=alice).update(model_id="an-older-model")
    client.force_login(alice)
    assert client.post(start_url)["Location"].startswith("/proctoring/enrol/?next=")
    assert not Attempt.objects.exists()


def test_declined_consent_does_not_open_the_exam(client, paper, alice, start_url):
    proctoring_ready(alice)
    consent_record(user=alice, accepted=False)
    client.force_login(alice)
    assert client.post(start_url)["Location"].startswith("/proctoring/consent/?next=")
    assert not Attempt.objects.exists()


def test_alice_ready_for_proctoring_starts_and_lands_on_the_attempt_page(client, paper, alice, start_url):
    proctoring_ready(alice)
    client.force_login(alice)
    response = client.post(start_url)
    attempt = Attempt.objects.get(student=alice)
    assert response["Location"] == f"/attempts/{attempt.id}/"
    page = client.get(response["Location"]).content.decode()
    assert 'id="proctor-panel"' in page
    assert f'href="/proctoring/check/{attempt.id}/"' in page


def test_an_exam_without_proctoring_needs_no_set_up(client, alice):
    exam = ExamFactory(proctoring_enabled=False)
    EnrollmentFactory(exam=exam, student=alice)
    client.force_login(alice)
    response = client.post(f"/exams/{exam.id}/start/")
    attempt = Attempt.objects.get(student=alice)
    assert response["Location"] == f"/attempts/{attempt.id}/"
    assert f"/proctoring/check/{attempt.id}/" not in client.get(response["Location"]).content.decode()


def test_an_attempt_already_running_is_resumed_without_a_detour(client, paper, alice, start_url):
    # Its clock runs either way; the exam page's panel asks for whatever is missing.
    attempt = services.attempt_start(exam=paper.exam, student=alice)
    client.force_login(alice)
    assert client.post(start_url)["Location"] == f"/attempts/{attempt.id}/"


def test_a_closed_exam_still_says_it_is_closed_rather_than_asking_for_set_up(client, paper, alice, start_url):
    paper.exam.opens_at = timezone.now() - timedelta(days=2)
    paper.exam.closes_at = timezone.now() - timedelta(days=1)
    paper.exam.save()
    client.force_login(alice)
    response = client.post(start_url, follow=True)
    assert "This exam closed on" in response.content.decode()


def test_bob_who_is_not_enrolled_is_not_sent_through_set_up(client, paper, bob, start_url):
    client.force_login(bob)
    response = client.post(start_url)
    assert not response["Location"].startswith("/proctoring/")
    assert not Attempt.objects.exists()


def test_no_attempt_left_is_explained_rather_than_asking_for_set_up(paper, alice):
    proctoring_ready(alice)
    attempt = services.attempt_start(exam=paper.exam, student=alice)
    services.attempt_submit(attempt=attempt)
    FaceTemplate.objects.filter(user=alice).delete()
    assert selectors.exam_setup_missing(exam=paper.exam, student=alice) is None


def test_the_exam_page_lists_the_three_steps_with_their_status_in_words(client, paper, alice, detail_url):
    client.force_login(alice)
    body = client.get(detail_url).content.decode()
    assert "Before you start" in body
    for step in ("setup-consent", "setup-enrolment", "setup-check"):
        assert f'id="{step}"' in body
    assert body.count("Not done yet") == 3
    assert f'href="/proctoring/consent/?next=/exams/{paper.exam.id}/"' in body
    assert 'id="setup-needed"' in body

    proctoring_ready(alice)
    body = client.get(detail_url).content.decode()
    assert body.count('<span class="badge badge-ok">Done</span>') == 2
    assert 'id="setup-needed"' not in body
    # The system check runs before the exam clock starts, from this page.
    assert f'href="/proctoring/check/exam/{paper.exam.id}/"' in body and "your exam time does not start" in body


def test_the_exam_page_links_the_system_check_while_an_attempt_is_open(client, paper, alice, detail_url):
    proctoring_ready(alice)
    attempt = services.attempt_start(exam=paper.exam, student=alice)
    client.force_login(alice)
    assert f'href="/proctoring/check/{attempt.id}/"' in client.get(detail_url).content.decode()


def test_an_unproctored_exam_page_shows_no_set_up_steps(client, alice):
    exam = ExamFactory(proctoring_enabled=False)
    EnrollmentFactory(exam=exam, student=alice)
    client.force_login(alice)
    assert "Before you start" not in client.get(f"/exams/{exam.id}/").content.decode()


def test_the_way_back_from_consent_stays_on_this_site(client, alice):
    client.force_login(alice)
    response = client.post(
        "/proctoring/consent/", {"decision": "accept", "understood": "on", "next": "https://evil.example/exams/1/"}
    )
    assert response.status_code == 302
    assert not response["Location"].startswith("https://evil.example")
