"""The pure rules, on plain data: no Django, no models."""

from __future__ import annotations

import dataclasses

import pytest

from proctoring import rules
from proctoring.rules import FrameRecord, RuleSettings, RuleState
from proctoring.vision.types import DetectedObject, Face, Gaze, Identity, Observation, Pose


def alice(seq: int, **overrides) -> FrameRecord:
    """Alice, enrolled, alone and looking at her screen, unless told otherwise."""
    values = dict(
        seq=seq,
        at=1000.0 + 2 * seq,
        face_count=1,
        face_scores=(0.98,),
        identity_checked=True,
        similarity=0.8,
        identity_threshold=0.4,
        yaw=2.0,
        pitch=-1.0,
    )
    values.update(overrides)
    return FrameRecord(**values)


def run(records, settings=None):
    settings = settings or RuleSettings()
    state = RuleState()
    decisions = []
    for record in records:
        decision = rules.step(state, record, settings)
        state = decision.state
        decisions.append(decision)
    return decisions


def events(decision):
    return [e["event"] for e in decision.events]


def test_alice_in_view_is_authorized_and_focused():
    [decision] = run([alice(1)])
    assert events(decision) == ["AUTHORIZED", "ATTENTION_UPDATE"]
    assert decision.events[-1] == {"event": "ATTENTION_UPDATE", "score": 100, "label": "Focused"}
    assert decision.opens == ()


def test_a_single_empty_frame_warns_but_does_not_flag():
    decisions = run([alice(1, face_count=0, face_scores=(), identity_checked=False, similarity=None)])
    assert "FACE_NOT_FOUND" in events(decisions[0])
    assert decisions[0].opens == ()
    assert decisions[0].attention == 0
    assert decisions[0].label == "Away"


def test_three_of_five_empty_frames_open_a_flag_and_clean_frames_close_it():
    empty = dict(face_count=0, face_scores=(), identity_checked=False, similarity=None, yaw=None, pitch=None)
    records = [alice(1, **empty), alice(2), alice(3, **empty), alice(4, **empty)] + [alice(s) for s in range(5, 9)]
    decisions = run(records)
    opened = [(d.opens[0].kind, d.opens[0].seq) for d in decisions if d.opens]
    assert opened == [("face_not_found", 4)]
    # The event of the frame that opened the flag is sent even inside the cooldown, marked for its flag id.
    assert {"event": "FACE_NOT_FOUND", "check": "face_not_found"}.items() <= decisions[3].events[0].items()
    closed = [(c.kind, c.seq) for d in decisions for c in d.closes]
    assert closed == [("face_not_found", 7)]


def test_k_and_n_come_from_the_exam_settings():
    settings = RuleSettings.from_config({"k": 2, "n": 2})
    phone = dict(phone_score=0.9)
    decisions = run([alice(1, **phone), alice(2, **phone)], settings)
    assert decisions[1].opens[0].kind == "phone_detected"
    assert decisions[1].opens[0].threshold == 0.5
    assert decisions[1].opens[0].confidence == 0.9


def test_the_cooldown_limits_each_event_type_separately():
    phone = dict(phone_score=0.9)
    # Frames 2 s apart with a 5 s cooldown: sent at t=1002, 1008 (not 1004, 1006).
    decisions = run([alice(s, **phone) for s in range(1, 5)], RuleSettings(k=5, n=5))
    sent = [d.events[0]["event"] if d.events[0]["event"] != "ATTENTION_UPDATE" else None for d in decisions]
    assert sent == ["AUTHORIZED", None, None, "AUTHORIZED"]
    phones = [("PHONE_DETECTED" in events(d)) for d in decisions]
    assert phones == [True, False, False, True]


def test_multiple_faces_carries_the_count_and_suppresses_identity():
    [decision] = run([alice(1, face_count=3, face_scores=(0.9, 0.8, 0.7))])
    assert decision.events[0] == {"event": "MULTIPLE_FACES", "count": 3, "message": rules.MESSAGES["MULTIPLE_FACES"]}
    assert "AUTHORIZED" not in events(decision)


def test_another_person_gives_identity_mismatch_with_similarity():
    decisions = run([alice(s, similarity=0.1) for s in range(1, 4)])
    assert decisions[0].events[0]["event"] == "IDENTITY_MISMATCH"
    assert decisions[0].events[0]["similarity"] == 0.1
    assert decisions[2].opens[0].kind == "identity_mismatch"
    assert decisions[2].opens[0].threshold == 0.4


def test_an_instructor_identity_threshold_overrides_the_models():
    settings = RuleSettings.from_config({"identity_threshold": 0.9, "k": 1, "n": 1})
    [decision] = run([alice(1, similarity=0.8)], settings)
    assert decision.opens[0].kind == "identity_mismatch"


def test_looking_away_scores_attention_relative_to_the_limit():
    decisions = run([alice(s, yaw=45.0) for s in range(1, 4)])
    first = decisions[0]
    assert first.frame_attention == 10
    assert events(first) == ["AUTHORIZED", "LOOKING_AWAY", "ATTENTION_UPDATE"]
    assert first.events[1]["score"] == 10
    assert decisions[2].opens[0].kind == "looking_away"
    # At the limit exactly: Distracted, not flagged.
    [at_limit] = run([alice(1, yaw=30.0)])
    assert at_limit.frame_attention == 55 and at_limit.label == "Distracted"
    assert "LOOKING_AWAY" not in events(at_limit)


def test_a_phone_caps_attention():
    [decision] = run([alice(1, phone_score=0.7)])
    assert decision.frame_attention == 30


def test_bobs_accommodation_turns_off_looking_away_and_its_attention_penalty():
    settings = RuleSettings.from_config({}, {"looking_away": False})
    assert "looking_away" not in settings.checks
    decisions = run([alice(s, yaw=60.0) for s in range(1, 6)], settings)
    assert all(d.opens == () for d in decisions)
    assert decisions[-1].attention == 100


def test_gaze_moves_attention_and_opens_looking_away_k_of_n_unless_an_accommodation_leaves_it_out():
    # The head straight, the eyes 30 degrees to the side (limit 20): attention drops and, after k of n frames,
    # LOOKING_AWAY opens, from gaze alone.
    decisions = run([alice(s, gaze_yaw=30.0, gaze_pitch=0.0) for s in range(1, 6)])
    assert decisions[0].frame_attention < 50 and decisions[0].opens == ()
    assert [tuple(f.kind for f in d.opens) for d in decisions].count(("looking_away",)) == 1
    # Her accommodation leaves gaze out: the same frames are full attention and open nothing; head pose still counts.
    settings = RuleSettings.from_config({}, {"gaze": False})
    assert settings.use_gaze is False and "looking_away" in settings.checks
    decisions = run([alice(s, gaze_yaw=30.0, gaze_pitch=0.0) for s in range(1, 6)], settings)
    assert all(d.opens == () for d in decisions) and decisions[-1].attention == 100
    assert run([alice(1, yaw=60.0)], settings)[0].frame_attention < 50
    # Only an accommodation can turn it off, and only off.
    assert RuleSettings.from_config({}, {"gaze": True}).use_gaze is True
    assert RuleSettings.from_config({"gaze": False}).use_gaze is True


def test_accommodations_only_relax_limits():
    assert RuleSettings.from_config({"yaw_limit": 30}, {"yaw_limit": 45}).yaw_limit == 45
    assert RuleSettings.from_config({"yaw_limit": 30}, {"yaw_limit": 10}).yaw_limit == 30


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="unknown check 'telepathy'"):
        RuleSettings.from_config({"checks": {"telepathy": True}})
    with pytest.raises(ValueError, match="k .* cannot be larger than n"):
        RuleSettings.from_config({"k": 6})
    with pytest.raises(ValueError, match="cooldown_s must be a non-negative number"):
        RuleSettings.from_config({"cooldown_s": "soon"})


def test_identity_is_checked_at_the_configured_cadence_and_every_frame_after_a_mismatch():
    settings = RuleSettings(identity_every=3)
    state = RuleState()
    due = []
    for seq in range(1, 7):
        due.append(rules.identity_due(state, settings))
        checked = due[-1]
        state = rules.step(
            state, alice(seq, identity_checked=checked, similarity=0.8 if checked else None), settings
        ).state
    assert due == [True, False, False, True, False, False]
    state = rules.step(state, alice(7, similarity=0.1), settings).state
    assert rules.identity_due(state, settings) is True


def test_server_errors_never_move_a_window():
    state = RuleState()
    for at in (1.0, 2.0, 3.0, 10.0):
        decision = rules.server_problem(state, at=at, event="ERROR", settings=RuleSettings())
        state = decision.state
    assert state.windows == {} and state.open_flags == {}
    assert state.server_errors == 4
    # Apologies respect the cooldown too.
    assert state.last_sent["ERROR"] == 10.0


def test_a_stall_is_due_after_three_intervals_without_a_frame():
    settings = RuleSettings()
    assert not rules.stall_due(last_frame_at=None, now=1003.0, settings=settings)
    assert not rules.stall_due(last_frame_at=1000.0, now=1005.9, settings=settings)
    assert rules.stall_due(last_frame_at=1000.0, now=1006.0, settings=settings)
    assert rules.stall_due(last_frame_at=1000.0, now=1006.0, settings=RuleSettings(stall_after=5)) is False


def test_the_state_survives_a_json_round_trip_so_a_reconnect_resumes():
    import json

    decisions = run([alice(s, phone_score=0.9) for s in range(1, 3)])
    restored = RuleState.from_dict(json.loads(json.dumps(decisions[-1].state.to_dict())))
    decision = rules.step(restored, alice(3, phone_score=0.9), RuleSettings())
    assert decision.opens[0].kind == "phone_detected"


def test_rescoring_is_deterministic_and_follows_new_sensitivity():
    records = [alice(s, phone_score=0.45 if s % 2 else 0.0) for s in range(1, 11)]
    strict = RuleSettings(phone_threshold=0.4, k=2, n=3)
    assert rules.rescore(records, RuleSettings()) == []
    first = rules.rescore(records, strict)
    assert first == rules.rescore(list(reversed(records)), strict)
    assert [(s.kind, s.started_seq) for s in first] == [("phone_detected", 3)]


def test_settings_round_trip_through_their_stored_snapshot():
    settings = RuleSettings.from_config({"checks": ["phone_detected"], "cooldowns": {"PHONE_DETECTED": 10}})
    assert RuleSettings.from_dict(settings.to_dict()) == settings


def test_a_record_takes_the_observation_as_the_worker_made_it():
    obs = Observation(
        width=640,
        height=480,
        faces=(Face(box=(0, 0, 10, 10), score=0.6), Face(box=(100, 100, 300, 300), score=0.9)),
        identity=Identity(similarity=0.71234, threshold=0.4, match=True),
        pose=Pose(yaw=12.0, pitch=3.0, roll=0.0),
        objects=(DetectedObject("cell phone", (0, 0, 1, 1), 0.8), DetectedObject("book", (0, 0, 1, 1), 0.6)),
    )
    record = FrameRecord.from_observation(obs, seq=4, at=5.0)
    # Pose and gaze are already relative to the neutral pose (the worker applies it, once): taken as they are.
    assert (record.yaw, record.pitch) == (12.0, 3.0)
    assert (record.gaze_yaw, record.gaze_pitch) == (None, None)  # no gaze in this observation
    with_gaze = dataclasses.replace(obs, gaze=Gaze(yaw=-8.0, pitch=14.0))
    assert FrameRecord.from_observation(with_gaze, seq=4, at=5.0).gaze_yaw == -8.0
    assert record.face_scores == (0.9, 0.6)
    assert record.phone_score == 0.8 and record.objects == {"book": 0.6}
    assert record.similarity == 0.7123


def test_an_identity_flag_spans_only_the_frames_that_showed_the_other_person():
    """Issue 11: someone else for 5 frames, then nobody, then two people, then alice again. The mismatch flag ends
    at the last frame that showed the other person, not when alice comes back; re-scoring gives the same span."""
    someone_else = [alice(s, similarity=0.1) for s in range(1, 6)]
    nobody = [alice(s, face_count=0, face_scores=(), identity_checked=False, similarity=None) for s in range(6, 10)]
    two = [
        alice(s, face_count=2, face_scores=(0.98, 0.9), identity_checked=False, similarity=None) for s in range(10, 14)
    ]
    back = [alice(s) for s in range(14, 18)]
    records = [*someone_else, *nobody, *two, *back]
    decisions = run(records)
    [opened] = [o for d in decisions for o in d.opens if o.kind == "identity_mismatch"]
    [closed] = [c for d in decisions for c in d.closes if c.kind == "identity_mismatch"]
    assert (opened.seq, closed.seq, closed.at, closed.reason) == (3, 5, records[4].at, "unknown")
    assert decisions[7].closes == (closed,)  # decided on the third frame that could not tell
    # The other kinds keep their own spans: nobody on camera, then two people.
    kinds = {o.kind for d in decisions for o in d.opens}
    assert {"face_not_found", "multiple_faces"} <= kinds
    spans = {s.kind: s for s in rules.rescore(records, RuleSettings())}
    assert (spans["identity_mismatch"].started_seq, spans["identity_mismatch"].ended_seq) == (3, 5)
    # A clean frame or a positive one in between resets the count: two unknown frames are not enough.
    gap = [*someone_else, *nobody[:2], alice(8, similarity=0.1), *nobody[2:]]
    assert not [c for d in run(gap) for c in d.closes if c.kind == "identity_mismatch"]
