"""Re-scoring leaves alone the sessions whose observations retention has deleted: nothing is left to re-run, and
re-running nothing would withdraw every open flag."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from proctoring.models import Flag, Observation, ProctoringSession
from proctoring.review.models import FlagWithdrawal
from proctoring.review.services.rescoring import rescore_apply, rescore_preview
from proctoring.services.retention import evidence_purge
from tests.review.test_decisions import client_for

pytestmark = pytest.mark.django_db

STRICTER = {"phone_threshold": 0.8, "yaw_limit": 45.0}


def row_of(plan, attempt):
    return next(a for a in plan.attempts if a.attempt_id == attempt.pk)


def open_flags(attempt) -> list[tuple]:
    return list(
        Flag.objects.filter(session__attempt=attempt, withdrawal__isnull=True)
        .order_by("id")
        .values_list("kind", "started_seq", "ended_seq", "confidence", "threshold")
    )


def age_out(attempt, *, days: int = 400) -> None:
    long_ago = timezone.now() - timedelta(days=days)
    ProctoringSession.objects.filter(attempt=attempt).update(started_at=long_ago, ended_at=long_ago)


def test_alices_purged_session_keeps_its_flags_while_bobs_recent_one_is_rescored(
    exam, alice_attempt, bob_attempt, charlie
):
    age_out(alice_attempt)
    report = evidence_purge(older_than_days=365)
    assert report.sessions == 1 and report.observations > 0
    assert not Observation.objects.filter(session__attempt=alice_attempt).exists()
    alice_before = open_flags(alice_attempt)

    run, plan = rescore_apply(exam_id=exam.pk, actor=charlie, config=STRICTER)

    alice = row_of(plan, alice_attempt)
    assert alice.purged_sessions == 1 and not alice.changed
    assert alice.before == alice.after
    assert open_flags(alice_attempt) == alice_before
    assert not FlagWithdrawal.objects.filter(flag__session__attempt=alice_attempt).exists()
    assert run.summary["attempts"][str(alice_attempt.pk)]["purged_sessions"] == 1
    # Bob still has his observations: the stricter phone threshold withdraws his phone flag.
    bob = row_of(plan, bob_attempt)
    assert (bob.purged_sessions, bob.withdrawn) == (0, 1)


def test_a_purge_that_stopped_half_way_also_protects_the_session(exam, alice_attempt):
    # Retention deletes in batches, each committed on its own: a failure can leave part of the rows.
    observations = Observation.objects.filter(session__attempt=alice_attempt)
    keep = observations.order_by("seq").values_list("seq", flat=True)[10]
    observations.filter(seq__gt=keep).delete()

    row = row_of(rescore_preview(exam=exam, config=STRICTER), alice_attempt)

    assert row.purged_sessions == 1 and not row.changed and row.before == row.after


def test_a_complete_session_is_not_mistaken_for_a_purged_one(exam, alice_attempt):
    row = row_of(rescore_preview(exam=exam, config=STRICTER), alice_attempt)
    assert row.purged_sessions == 0 and row.withdrawn == 2


def test_the_preview_tells_charlie_which_sessions_were_left_as_they_are(exam, alice_attempt, charlie):
    age_out(alice_attempt)
    evidence_purge(older_than_days=365)
    url = reverse("review:rescore", args=[exam.pk])
    form = {
        "checks": ["face_not_found", "multiple_faces", "identity_mismatch", "phone_detected", "looking_away"],
        "k": 3,
        "n": 5,
        "clear_after": 3,
        "cooldown_s": 5,
        "yaw_limit": 45,
        "pitch_limit": 25,
        "gaze_limit": 20,
        "phone_threshold": 0.8,
        "action": "preview",
    }
    page = client_for(charlie).post(url, form).content.decode()
    assert "1 session whose frame data was deleted under the retention policy left as it is" in page
