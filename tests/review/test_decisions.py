"""Human decisions and their audit trail, the student's response beside the flag, the pages that show them, and the
CSV export."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse

from proctoring.decisions import ReviewError
from proctoring.models import Flag
from proctoring.review.models import FlagDecision, FlagResponse
from proctoring.review.services.decisions import flag_response_create, flag_review, flags_review_bulk

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def flag_of(attempt, kind: str) -> Flag:
    return Flag.objects.get(session__attempt=attempt, kind=kind)


def test_confirming_a_flag_records_who_what_and_why(charlie, alice_attempt):
    flag = flag_of(alice_attempt, "phone_detected")
    response = client_for(charlie).post(
        reverse("review:decide", args=[flag.pk]), {"decision": "confirm", "note": "Phone in her hand."}
    )
    assert response.status_code == 302
    assert response["Location"].endswith(f"/review/attempts/{alice_attempt.pk}/#flag-{flag.pk}")
    flag.refresh_from_db()
    assert flag.status == "confirmed"
    decision = FlagDecision.objects.get(flag=flag)
    assert (decision.actor, decision.action, decision.from_status, decision.to_status, decision.note) == (
        charlie,
        "confirm",
        "open",
        "confirmed",
        "Phone in her hand.",
    )
    assert decision.attempt_id == alice_attempt.pk


def test_every_change_of_mind_is_kept_in_order(charlie, alice_attempt):
    flag = flag_of(alice_attempt, "looking_away")
    flag_review(flag_id=flag.pk, actor=charlie, decision="confirm")
    flag_review(flag_id=flag.pk, actor=charlie, decision="reopen", note="Second look needed.")
    flag_review(flag_id=flag.pk, actor=charlie, decision="dismiss", note="Formula sheet is allowed.")
    # The same decision again without a note adds nothing.
    flag_review(flag_id=flag.pk, actor=charlie, decision="dismiss")
    trail = list(FlagDecision.objects.filter(flag=flag).order_by("at", "id").values_list("action", "to_status"))
    assert trail == [("confirm", "confirmed"), ("reopen", "open"), ("dismiss", "dismissed")]


def test_unknown_decisions_and_long_notes_are_refused_clearly(charlie, alice_attempt):
    flag = flag_of(alice_attempt, "looking_away")
    with pytest.raises(ReviewError, match="Unknown decision"):
        flag_review(flag_id=flag.pk, actor=charlie, decision="punish")
    with pytest.raises(ReviewError, match="too long"):
        flag_review(flag_id=flag.pk, actor=charlie, decision="dismiss", note="x" * 2001)
    response = client_for(charlie).post(reverse("review:decide", args=[flag.pk]), {"decision": "punish"})
    assert response.status_code == 302
    assert not FlagDecision.objects.exists()


def test_bulk_decisions_are_all_or_nothing(charlie, diana, exam, alice_attempt):
    from tests.factories import ExamFactory, StudentFactory
    from tests.review.builders import build_proctored_attempt

    other = build_proctored_attempt(exam=ExamFactory(owner=diana), student=StudentFactory(username="erin"))
    mine = list(Flag.objects.filter(session__attempt=alice_attempt).values_list("pk", flat=True))
    theirs = Flag.objects.filter(session__attempt=other).values_list("pk", flat=True).first()
    with pytest.raises(ReviewError):
        flags_review_bulk(flag_ids=[*mine, theirs], actor=charlie, decision="dismiss")
    assert not Flag.objects.exclude(status="open").exists()
    assert flags_review_bulk(flag_ids=mine, actor=charlie, decision="dismiss") == 5


def test_alice_responds_once_and_charlie_sees_it_beside_the_flag(alice, charlie, alice_attempt):
    flag = flag_of(alice_attempt, "multiple_faces")
    flag_review(flag_id=flag.pk, actor=charlie, decision="confirm", note="A second person behind her.")
    client = client_for(alice)
    url = reverse("review:my_flags", args=[alice_attempt.pk])
    page = client.get(url).content.decode()
    # The same wording as the instructor's card: never "k of n frames in a row", which contradicts itself.
    k, n = flag.details["k"], flag.details["n"]
    text = " ".join(page.split())
    assert f"in {k} of the last {n} checked frames" in text and "in a row" not in text
    assert f'<label for="response-{flag.pk}">Your response to this flag</label>' in page
    response = client.post(url, {"flag": flag.pk, "text": "My brother walked in; I asked him to leave."})
    assert response.status_code == 302
    assert FlagResponse.objects.get(flag=flag, student=alice).text.startswith("My brother")
    # A second response is refused, with a calm message on the page.
    response = client.post(url, {"flag": flag.pk, "text": "Another try"})
    assert response.status_code == 200 and "already responded" in response.content.decode()
    with pytest.raises(ReviewError, match="write your response"):
        flag_response_create(flag_id=flag.pk, student=alice, text="   ")
    assert FlagResponse.objects.count() == 1

    page = client_for(charlie).get(reverse("review:attempt", args=[alice_attempt.pk])).content.decode()
    card = page[page.index(f'id="flag-{flag.pk}"') :]
    card = card[: card.index("</article>")]
    assert "My brother walked in" in card


def test_the_review_page_shows_the_timeline_evidence_and_a_table_alternative(charlie, alice_attempt):
    page = client_for(charlie).get(reverse("review:attempt", args=[alice_attempt.pk])).content.decode()
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="timeline"' in page
    assert '<title id="timeline-title">' in page
    for flag in Flag.objects.filter(session__attempt=alice_attempt).prefetch_related("snapshots"):
        assert f'href="#flag-{flag.pk}"' in page
        assert f'id="flag-{flag.pk}"' in page
        assert reverse("proctoring:snapshot", args=[flag.snapshots.first().pk]) in page
        assert flag.model_version in page
    assert "Timeline as tables" in page and "Attention by minute" in page
    assert "Tab hidden" in page and "Left fullscreen" in page and "Stalled" in page


def test_the_attempts_list_puts_open_identity_flags_first_and_filters(charlie, exam, alice_attempt, bob_attempt):
    client = client_for(charlie)
    url = reverse("review:exam", args=[exam.pk])
    body = client.get(url).content.decode()
    assert body.index("Alice Adams") < body.index("Bob Brown")
    body = client.get(url, {"kind": "identity_mismatch"}).content.decode()
    assert "Alice Adams" in body and "Bob Brown" not in body
    for pk in Flag.objects.filter(session__attempt=bob_attempt).values_list("pk", flat=True):
        flag_review(flag_id=pk, actor=charlie, decision="dismiss")
    body = client.get(url, {"state": "reviewed"}).content.decode()
    assert "Bob Brown" in body and "Alice Adams" not in body
    body = client.get(url, {"sort": "student", "q": "bro"}).content.decode()
    assert "Bob Brown" in body and "Alice Adams" not in body


def test_csv_export_has_scores_counts_and_every_flag(charlie, alice, exam, alice_attempt, bob_attempt):
    alice.last_name = "=HYPERLINK(evil)"
    alice.save()
    flag = flag_of(alice_attempt, "phone_detected")
    flag_review(flag_id=flag.pk, actor=charlie, decision="confirm", note="Phone visible")
    client = client_for(charlie)
    url = reverse("review:export", args=[exam.pk])
    response = client.get(url, {"what": "attempts"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    by_user = {r["username"]: r for r in rows}
    assert by_user["alice"]["flags_phone_detected"] == "1" and by_user["alice"]["confirmed"] == "1"
    assert by_user["alice"]["open"] == "4" and by_user["alice"]["score"] == "7.00"
    assert by_user["bob"]["flags_phone_detected"] == "1" and by_user["bob"]["flags_identity_mismatch"] == "0"
    # A name that looks like a formula is exported as text.
    assert by_user["alice"]["name"].startswith("Alice")
    rows = list(csv.DictReader(io.StringIO(client.get(url, {"what": "flags"}).content.decode())))
    assert len(rows) == 6
    phone = next(r for r in rows if r["flag_id"] == str(flag.pk))
    assert (phone["status"], phone["decided_by"], phone["note"]) == ("confirmed", "charlie", "Phone visible")
    assert client.get(url, {"what": "everything"}).status_code == 400


def test_csv_cells_that_look_like_formulas_are_defused(charlie, exam, alice, alice_attempt):
    alice.first_name = "=cmd"
    alice.last_name = ""
    alice.save()
    response = client_for(charlie).get(reverse("review:export", args=[exam.pk]), {"what": "attempts"})
    row = next(r for r in csv.DictReader(io.StringIO(response.content.decode())) if r["username"] == "alice")
    assert row["name"] == "'=cmd"


def test_an_attempt_without_proctoring_data_says_so(charlie, exam, bob):
    from datetime import timedelta

    from django.utils import timezone

    from exams.models import Attempt

    now = timezone.now()
    attempt = Attempt.objects.create(exam=exam, student=bob, started_at=now, deadline=now + timedelta(hours=1))
    page = client_for(charlie).get(reverse("review:attempt", args=[attempt.pk])).content.decode()
    assert "No proctoring data for this attempt." in page and "<svg" not in page


def test_the_sensitivity_form_explains_bad_values_and_changes_nothing(charlie, exam, alice_attempt):
    url = reverse("review:rescore", args=[exam.pk])
    client = client_for(charlie)
    form = {
        "checks": ["face_not_found", "multiple_faces", "identity_mismatch", "phone_detected", "looking_away"],
        "k": 6,
        "n": 5,
        "clear_after": 3,
        "cooldown_s": 5,
        "yaw_limit": 30,
        "pitch_limit": 25,
        "gaze_limit": 20,
        "phone_threshold": 0.5,
        "action": "apply",
    }
    page = client.post(url, form).content.decode()
    assert "k cannot be larger than n" in page
    page = client.post(url, {**form, "k": 3, "phone_threshold": 7, "action": "preview"}).content.decode()
    assert "Ensure this value is less than or equal to 1" in page and 'id="preview"' not in page
    exam.refresh_from_db()
    assert exam.proctoring_settings == {}
    # The form starts from the exam's current settings.
    page = client.get(url).content.decode()
    assert 'name="phone_threshold" value="0.5"' in page


def test_column_headers_sort_and_keep_the_filters(charlie, exam, alice_attempt, bob_attempt):
    url = reverse("review:exam", args=[exam.pk])
    body = client_for(charlie).get(url, {"state": "needs review", "q": "b"}).content.decode()
    assert 'href="?sort=student&state=needs+review&amp;q=b"' in body
    assert 'aria-sort="descending"><a href="?sort=priority' in body
