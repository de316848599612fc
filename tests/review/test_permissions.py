"""Who may see what: instructors only their own exams, students only their own attempts and only confirmed flags,
evidence only for the exam's instructor and admins."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from proctoring.decisions import ReviewError
from proctoring.models import EvidenceView, Flag, Snapshot
from proctoring.review.models import FlagDecision, FlagResponse
from proctoring.review.services.decisions import flag_response_create, flag_review

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def instructor_urls(exam, attempt) -> list[str]:
    return [
        reverse("review:exam", args=[exam.pk]),
        reverse("review:export", args=[exam.pk]) + "?what=flags",
        reverse("review:rescore", args=[exam.pk]),
        reverse("review:monitor", args=[exam.pk]),
        reverse("review:attempt", args=[attempt.pk]),
    ]


def test_charlie_opens_every_review_page_of_his_own_exam(charlie, exam, alice_attempt):
    client = client_for(charlie)
    for url in instructor_urls(exam, alice_attempt):
        assert client.get(url).status_code == 200, url


def test_diana_gets_not_found_for_every_page_of_charlies_exam(diana, exam, alice_attempt):
    client = client_for(diana)
    for url in instructor_urls(exam, alice_attempt):
        assert client.get(url).status_code == 404, url


def test_students_get_not_found_for_instructor_pages(alice, exam, alice_attempt):
    client = client_for(alice)
    for url in instructor_urls(exam, alice_attempt):
        assert client.get(url).status_code == 404, url
    assert client.get(reverse("review:index")).status_code == 404


def test_anonymous_visitors_are_sent_to_log_in(exam, alice_attempt):
    client = client_for(None)
    for url in instructor_urls(exam, alice_attempt):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url


def test_an_admin_reviews_every_exam(root, exam, alice_attempt):
    client = client_for(root)
    for url in instructor_urls(exam, alice_attempt):
        assert client.get(url).status_code == 200, url


def test_the_exam_index_lists_only_charlies_exams(charlie, diana, exam):
    from tests.factories import ExamFactory

    ExamFactory(owner=diana, title="Dianas Physics Quiz")
    body = client_for(charlie).get(reverse("review:index")).content.decode()
    assert "Organic Chemistry Final" in body and "Dianas Physics Quiz" not in body


def test_snapshot_urls_refuse_students_other_instructors_and_anonymous(alice, bob, diana, exam, alice_attempt):
    snapshot = Snapshot.objects.filter(flag__session__attempt=alice_attempt).first()
    url = reverse("proctoring:snapshot", args=[snapshot.pk])
    assert client_for(alice).get(url).status_code == 403  # not even the student in the picture
    assert client_for(bob).get(url).status_code == 403
    assert client_for(diana).get(url).status_code == 403
    assert client_for(None).get(url).status_code == 302
    assert not EvidenceView.objects.exists()


def test_charlie_sees_the_snapshot_and_the_view_is_audited(charlie, exam, alice_attempt):
    snapshot = Snapshot.objects.filter(flag__session__attempt=alice_attempt).first()
    response = client_for(charlie).get(reverse("proctoring:snapshot", args=[snapshot.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert response.content[:2] == b"\xff\xd8"
    view = EvidenceView.objects.get()
    assert (view.viewer, view.snapshot, view.attempt_id) == (charlie, snapshot, alice_attempt.pk)


def test_alice_sees_only_confirmed_flags_on_her_own_attempt(alice, charlie, alice_attempt):
    flags = {f.kind: f for f in Flag.objects.filter(session__attempt=alice_attempt)}
    flag_review(flag_id=flags["phone_detected"].pk, actor=charlie, decision="confirm", note="Phone on the desk.")
    flag_review(flag_id=flags["looking_away"].pk, actor=charlie, decision="dismiss")
    body = client_for(alice).get(reverse("review:my_flags", args=[alice_attempt.pk])).content.decode()
    assert "Phone detected" in body
    for hidden in ("Looking away", "Identity mismatch", "Multiple faces", "Face not found"):
        assert hidden not in body
    # Raw evidence is not on the student's page.
    assert "/proctoring/snapshots/" not in body


def test_bob_cannot_open_alices_flags_or_respond_to_them(alice, bob, charlie, alice_attempt):
    flag = Flag.objects.filter(session__attempt=alice_attempt).first()
    flag_review(flag_id=flag.pk, actor=charlie, decision="confirm")
    client = client_for(bob)
    url = reverse("review:my_flags", args=[alice_attempt.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"flag": flag.pk, "text": "Not me"}).status_code == 404
    with pytest.raises(ReviewError):
        flag_response_create(flag_id=flag.pk, student=bob, text="Not me")
    assert not FlagResponse.objects.exists()


def test_alice_cannot_respond_to_an_open_flag(alice, alice_attempt):
    flag = Flag.objects.filter(session__attempt=alice_attempt).first()
    with pytest.raises(ReviewError, match="no confirmed flag"):
        flag_response_create(flag_id=flag.pk, student=alice, text="Hello")


def test_diana_cannot_decide_a_flag_of_charlies_exam(diana, alice, alice_attempt):
    flag = Flag.objects.filter(session__attempt=alice_attempt).first()
    response = client_for(diana).post(reverse("review:decide", args=[flag.pk]), {"decision": "confirm"})
    assert response.status_code == 404
    response = client_for(alice).post(reverse("review:decide", args=[flag.pk]), {"decision": "dismiss"})
    assert response.status_code == 404
    flag.refresh_from_db()
    assert flag.status == "open" and not FlagDecision.objects.exists()
