"""Re-scoring from stored observations: deterministic, previewed before applied, never overriding a human decision,
and never running a model."""

from __future__ import annotations

from unittest import mock

import pytest

from proctoring.decisions import ReviewError
from proctoring.models import Flag, ProctoringSession, Snapshot
from proctoring.review.models import FlagDecision, FlagWithdrawal, RescoreRun
from proctoring.review.services.decisions import flag_review
from proctoring.review.services.rescoring import rescore_apply, rescore_preview

pytestmark = pytest.mark.django_db

ALL_ONE = {
    "identity_mismatch": 1,
    "multiple_faces": 1,
    "phone_detected": 1,
    "face_not_found": 1,
    "looking_away": 1,
}


def counts(plan, attempt) -> tuple[dict, dict]:
    row = next(a for a in plan.attempts if a.attempt_id == attempt.pk)
    return {k: v for k, v in row.before.items() if v}, {k: v for k, v in row.after.items() if v}


def visible(attempt) -> dict[str, int]:
    out: dict[str, int] = {}
    for flag in Flag.objects.filter(session__attempt=attempt, withdrawal__isnull=True):
        out[flag.kind] = out.get(flag.kind, 0) + 1
    return out


def test_the_same_settings_reproduce_the_live_flags_exactly(exam, alice_attempt):
    plan = rescore_preview(exam=exam, config={})
    before, after = counts(plan, alice_attempt)
    assert before == after == ALL_ONE
    row = plan.attempts[0]
    assert (row.created, row.updated, row.withdrawn) == (0, 0, 0)


def test_a_stricter_phone_threshold_and_wider_head_limit_remove_those_flags_in_the_preview(
    exam, alice_attempt, bob_attempt
):
    config = {"phone_threshold": 0.8, "yaw_limit": 45.0}
    plan = rescore_preview(exam=exam, config=config)
    before, after = counts(plan, alice_attempt)
    assert before == ALL_ONE
    assert after == {"identity_mismatch": 1, "multiple_faces": 1, "face_not_found": 1}
    assert counts(plan, bob_attempt) == ({"phone_detected": 1}, {})
    totals = {kind: (b, a, d) for kind, _, b, a, d in plan.totals()}
    assert totals["phone_detected"] == (2, 0, -2)
    assert totals["looking_away"] == (1, 0, -1)
    # Deterministic: the same stored data and settings give the same plan, again and again.
    assert rescore_preview(exam=exam, config=config).summary() == plan.summary()
    # A preview changes nothing.
    assert visible(alice_attempt) == ALL_ONE
    assert not RescoreRun.objects.exists()


def test_longer_persistence_needs_more_frames_and_drops_the_short_patterns(exam, alice_attempt):
    # Every bad scene lasts 6 frames; asking for 7 of 8 leaves none of them.
    plan = rescore_preview(exam=exam, config={"k": 7, "n": 8})
    assert counts(plan, alice_attempt) == (ALL_ONE, {})


def test_turning_a_check_off_removes_its_flags(exam, alice_attempt):
    checks = ["face_not_found", "multiple_faces", "identity_mismatch", "phone_detected"]
    before, after = counts(rescore_preview(exam=exam, config={"checks": checks}), alice_attempt)
    assert after == {k: v for k, v in ALL_ONE.items() if k != "looking_away"}


def test_applying_matches_the_preview_keeps_evidence_and_going_back_restores_it(exam, alice_attempt, charlie):
    config = {"phone_threshold": 0.8, "yaw_limit": 45.0}
    preview = rescore_preview(exam=exam, config=config)
    run, plan = rescore_apply(exam_id=exam.pk, actor=charlie, config=config)
    assert plan.summary() == preview.summary()
    assert visible(alice_attempt) == counts(preview, alice_attempt)[1]
    withdrawn = FlagWithdrawal.objects.filter(run=run).select_related("flag")
    assert sorted(w.flag.kind for w in withdrawn) == ["looking_away", "phone_detected"]
    # The evidence of a withdrawn flag is kept.
    assert Snapshot.objects.filter(flag__session__attempt=alice_attempt).count() == 5
    exam.refresh_from_db()
    assert exam.proctoring_settings == config
    assert run.summary["attempts"][str(alice_attempt.pk)]["withdrawn"] == 2
    assert FlagDecision.objects.filter(run=run, action="rescore_withdraw", actor=charlie).count() == 2

    run2, _ = rescore_apply(exam_id=exam.pk, actor=charlie, config={})
    assert visible(alice_attempt) == ALL_ONE
    assert not FlagWithdrawal.objects.exists()
    assert FlagDecision.objects.filter(run=run2, action="rescore_restore").count() == 2


def test_a_reviewed_flag_is_never_changed_and_shows_as_a_conflict(exam, alice_attempt, charlie):
    phone = Flag.objects.get(session__attempt=alice_attempt, kind="phone_detected")
    away = Flag.objects.get(session__attempt=alice_attempt, kind="looking_away")
    flag_review(flag_id=phone.pk, actor=charlie, decision="confirm", note="Phone in hand, clearly.")
    flag_review(flag_id=away.pk, actor=charlie, decision="dismiss", note="Reading the formula sheet.")
    snapshot = (phone.started_at, phone.ended_at, phone.confidence, phone.threshold)

    config = {"phone_threshold": 0.8, "yaw_limit": 45.0}
    plan = rescore_preview(exam=exam, config=config)
    assert sorted(c.flag_id for c in plan.conflicts) == sorted([phone.pk, away.pk])
    # Reviewed flags stay in the "after" count: the decision stands.
    assert counts(plan, alice_attempt)[1] == ALL_ONE

    rescore_apply(exam_id=exam.pk, actor=charlie, config=config)
    phone.refresh_from_db()
    away.refresh_from_db()
    assert phone.status == "confirmed" and away.status == "dismissed"
    assert (phone.started_at, phone.ended_at, phone.confidence, phone.threshold) == snapshot
    assert not FlagWithdrawal.objects.filter(flag__in=[phone, away]).exists()


def test_looser_settings_add_flags_once_and_applying_twice_changes_nothing_more(exam, alice_attempt, charlie):
    # 2 of 5 opens sooner; the flags are the same patterns, so they update in place rather than duplicate.
    _, plan = rescore_apply(exam_id=exam.pk, actor=charlie, config={"k": 2, "n": 5})
    assert visible(alice_attempt) == ALL_ONE
    assert plan.attempts[0].updated == 5 and plan.attempts[0].created == 0
    again = rescore_preview(exam=exam, config={"k": 2, "n": 5})
    assert not again.attempts[0].changed


def test_sessions_still_streaming_are_left_to_the_live_consumer(exam, alice_attempt):
    ProctoringSession.objects.filter(attempt=alice_attempt).update(status="active")
    plan = rescore_preview(exam=exam, config={"phone_threshold": 0.8})
    row = plan.attempts[0]
    assert row.live_sessions == 1 and not row.changed
    assert counts(plan, alice_attempt) == (ALL_ONE, ALL_ONE)


def test_no_model_is_loaded_to_rescore(exam, alice_attempt, charlie):
    with mock.patch("proctoring.vision.pipeline.get_analyzer", autospec=True) as get_analyzer:
        rescore_apply(exam_id=exam.pk, actor=charlie, config={"phone_threshold": 0.9})
    get_analyzer.assert_not_called()


def test_bad_settings_are_a_clear_error(exam, alice_attempt, charlie):
    with pytest.raises(ReviewError, match="k .* cannot be larger than n"):
        rescore_preview(exam=exam, config={"k": 6, "n": 5})
    with pytest.raises(ReviewError, match="unknown check"):
        rescore_preview(exam=exam, config={"checks": ["mind_reading"]})


def test_only_the_exams_instructor_can_apply(exam, alice_attempt, diana, alice):
    for who in (diana, alice):
        with pytest.raises(ReviewError):
            rescore_apply(exam_id=exam.pk, actor=who, config={"phone_threshold": 0.9})
    assert not RescoreRun.objects.exists()


def test_the_preview_says_which_flags_open_move_or_close_per_student(exam, alice_attempt, bob_attempt, charlie):
    from django.test import Client
    from django.urls import reverse

    plan = rescore_preview(exam=exam, config={"phone_threshold": 0.8, "yaw_limit": 45.0})
    alice = next(a for a in plan.attempts if a.attempt_id == alice_attempt.pk)
    phone = Flag.objects.get(session__attempt=alice_attempt, kind="phone_detected")
    away = Flag.objects.get(session__attempt=alice_attempt, kind="looking_away")
    assert {(c.verb, c.kind, c.flag_id) for c in alice.changes()} == {
        ("closes", "phone_detected", phone.pk), ("closes", "looking_away", away.pk)}  # fmt: skip
    assert str(alice.changes()[0]).endswith("closes")
    looser = rescore_preview(exam=exam, config={"k": 2, "n": 5})
    moves = [c for a in looser.attempts for c in a.changes() if c.verb == "moves"]
    assert moves and all(c.flag_id and c.started_seq and c.started_at for c in moves)

    import re

    client = Client()
    client.force_login(charlie)
    url = reverse("review:rescore", args=[exam.pk])
    form = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', client.get(url).content.decode()))
    form.update({"action": "preview", "phone_threshold": "0.8", "yaw_limit": "45"})
    page = client.post(url, form).content.decode()
    assert f"Phone detected (flag {phone.pk})</a> closes" in page
