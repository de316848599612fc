"""frame_signals: single-frame events from plain observations (no models, no Django)."""

from __future__ import annotations

import pytest

from proctoring.frame_signals import frame_signals
from proctoring.vision.types import DetectedObject, Face, Identity, Observation, Pose

ONE = (Face(box=(10, 10, 110, 110), score=0.9),)
TWO = ONE + (Face(box=(200, 10, 260, 70), score=0.8),)
PHONE = DetectedObject(label="cell phone", box=(0, 0, 10, 10), score=0.9)


def obs(**kwargs) -> Observation:
    return Observation(width=640, height=480, **kwargs)


def test_no_face_is_face_not_found():
    assert frame_signals(obs()) == ["FACE_NOT_FOUND"]


def test_two_faces_are_multiple_faces_even_when_the_main_one_matches():
    assert frame_signals(obs(faces=TWO, identity=Identity(0.9, 0.45, True))) == ["MULTIPLE_FACES"]


def test_one_matching_face_is_authorized():
    assert frame_signals(obs(faces=ONE, identity=Identity(0.9, 0.45, True))) == ["AUTHORIZED"]


def test_one_face_without_an_enrolment_is_authorized():
    assert frame_signals(obs(faces=ONE)) == ["AUTHORIZED"]


def test_one_face_of_somebody_else_is_an_identity_mismatch():
    assert frame_signals(obs(faces=ONE, identity=Identity(0.1, 0.45, False))) == ["IDENTITY_MISMATCH"]


def test_an_enrolment_from_another_model_neither_authorizes_nor_accuses():
    assert frame_signals(obs(faces=ONE, identity_error="enrolled with another model: re-enrol")) == []


def test_a_phone_comes_after_the_face_event():
    assert frame_signals(obs(faces=ONE, objects=(PHONE,))) == ["AUTHORIZED", "PHONE_DETECTED"]
    assert frame_signals(obs(objects=(PHONE,))) == ["FACE_NOT_FOUND", "PHONE_DETECTED"]


def test_other_objects_are_not_phones():
    laptop = DetectedObject(label="laptop", box=(0, 0, 10, 10), score=0.99)
    assert frame_signals(obs(faces=ONE, objects=(laptop,))) == ["AUTHORIZED"]


@pytest.mark.parametrize(
    ("pose", "away"),
    [
        (Pose(0, 0, 0), False),
        (Pose(30, 0, 0), False),
        (Pose(-31, 0, 0), True),
        (Pose(0, 26, 0), True),
        (Pose(0, -25, 40), False),
    ],
)
def test_looking_away_uses_the_yaw_and_pitch_limits(pose, away):
    assert ("LOOKING_AWAY" in frame_signals(obs(faces=ONE, pose=pose))) is away


def test_limits_are_configurable_and_looking_away_comes_last():
    events = frame_signals(obs(faces=ONE, pose=Pose(20, 0, 0), objects=(PHONE,)), yaw_limit=15)
    assert events == ["AUTHORIZED", "PHONE_DETECTED", "LOOKING_AWAY"]


def test_signals_survive_a_round_trip_through_json():
    original = obs(faces=TWO, pose=Pose(40, 0, 0), objects=(PHONE,), identity=Identity(0.2, 0.45, False))
    assert frame_signals(Observation.from_dict(original.to_dict())) == frame_signals(original)


# --- One order, two readings: the rules and the CLI must not drift ------------------------------------------------


FACES = {"none": (), "one": ONE, "two": TWO}
IDENTITIES = {"match": Identity(0.9, 0.45, True), "mismatch": Identity(0.1, 0.45, False)}
POSES = {"ahead": Pose(0.0, 0.0, 0.0), "away": Pose(50.0, 0.0, 0.0)}


@pytest.mark.parametrize("faces", FACES)
@pytest.mark.parametrize("identity", IDENTITIES)
@pytest.mark.parametrize("phone", [False, True])
@pytest.mark.parametrize("pose", POSES)
def test_the_rules_and_the_cli_give_the_same_signals_in_the_same_order_where_they_measure_the_same(
    faces, identity, phone, pose
):
    """Where the rules' reading and the CLI's agree (the identity compared, a phone well over the exam's threshold,
    pose only: no gaze in the observation; a pose only with one face, as the rules judge no one's head when two are in
    view), both give the same single-frame signals: the order lives in one place, frame_signals.in_order."""
    from proctoring import rules

    seen = obs(
        faces=FACES[faces],
        identity=IDENTITIES[identity] if faces == "one" else None,
        pose=POSES[pose] if faces == "one" else None,
        objects=(PHONE,) if phone else (),
    )
    settings = rules.RuleSettings()
    record = rules.FrameRecord.from_observation(seen, seq=1, at=0.0)
    decision = rules.step(rules.RuleState(), record, settings)
    cli = frame_signals(seen, yaw_limit=settings.yaw_limit, pitch_limit=settings.pitch_limit)
    if faces != "one":
        # With no face or two, no identity is compared, and neither reading claims one.
        assert "AUTHORIZED" not in cli and "IDENTITY_MISMATCH" not in cli
    assert list(decision.signals) == cli
