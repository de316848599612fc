"""Single-frame signals: what one observation says before any temporal rule (cooldowns, k-of-n) is applied.

Pure: plain data in, event names out; no Django, no models. The temporal rules in ``proctoring.rules`` build on
these, and the CLI (`proctor_analyze`) prints them as they are.
"""

from __future__ import annotations

from .vision.types import Observation

FACE_NOT_FOUND = "FACE_NOT_FOUND"
MULTIPLE_FACES = "MULTIPLE_FACES"
IDENTITY_MISMATCH = "IDENTITY_MISMATCH"
AUTHORIZED = "AUTHORIZED"
PHONE_DETECTED = "PHONE_DETECTED"
LOOKING_AWAY = "LOOKING_AWAY"

PHONE_LABEL = "cell phone"


def in_order(*, faces: int, identity: bool | None, phone: bool, away: bool) -> list[str]:
    """The events of one frame, in the vision contract's order of precedence. The one place that order is written:
    the rules (``proctoring.rules``, per exam, with its thresholds) and `frame_signals` (the CLI's raw reading) both
    say what each check found and take the events from here.

    1. exactly one of FACE_NOT_FOUND (`faces` 0) | MULTIPLE_FACES (more than 1) | IDENTITY_MISMATCH (`identity`
       False) | AUTHORIZED (`identity` True), or none of the four when `identity` is None (nothing claimed);
    2. then PHONE_DETECTED;
    3. then LOOKING_AWAY.
    """
    events: list[str] = []
    if faces == 0:
        events.append(FACE_NOT_FOUND)
    elif faces > 1:
        events.append(MULTIPLE_FACES)
    elif identity is False:
        events.append(IDENTITY_MISMATCH)
    elif identity is True:
        events.append(AUTHORIZED)
    if phone:
        events.append(PHONE_DETECTED)
    if away:
        events.append(LOOKING_AWAY)
    return events


def frame_signals(obs: Observation, *, yaw_limit: float = 30.0, pitch_limit: float = 25.0) -> list[str]:
    """Events of one frame as the models read it (`in_order` gives the order):

    - AUTHORIZED means one face that matches the enrolment, or simply one face when no enrolment was compared. When
      the enrolment could not be compared at all (``identity_error``: another embedding model), none of the four is
      claimed: the session must re-enrol, which is not the student's misconduct and not an authorisation either;
    - PHONE_DETECTED when a cell phone is among the objects (at the detector's own score);
    - LOOKING_AWAY when the main face's pose (relative to the student's neutral pose) exceeds a limit.
    """
    identity: bool | None = None
    if obs.identity is not None:
        identity = obs.identity.match
    elif obs.identity_error is None:
        identity = True
    away = obs.pose is not None and (abs(obs.pose.yaw) > yaw_limit or abs(obs.pose.pitch) > pitch_limit)
    return in_order(
        faces=obs.face_count,
        identity=identity,
        phone=any(obj.label == PHONE_LABEL for obj in obs.objects),
        away=away,
    )
