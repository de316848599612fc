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


def frame_signals(obs: Observation, *, yaw_limit: float = 30.0, pitch_limit: float = 25.0) -> list[str]:
    """Events of one frame, in this order of precedence:

    1. exactly one of FACE_NOT_FOUND | MULTIPLE_FACES | IDENTITY_MISMATCH | AUTHORIZED, where AUTHORIZED means one
       face that matches the enrolment, or simply one face when no enrolment was compared. When the enrolment could
       not be compared at all (``identity_error``: another embedding model), none of the four is claimed: the
       session must re-enrol, which is not the student's misconduct and not an authorisation either;
    2. then PHONE_DETECTED when a cell phone is among the objects;
    3. then LOOKING_AWAY when the main face's pose (relative to the student's neutral pose) exceeds a limit.
    """
    events: list[str] = []
    if obs.face_count == 0:
        events.append(FACE_NOT_FOUND)
    elif obs.face_count > 1:
        events.append(MULTIPLE_FACES)
    elif obs.identity is not None and not obs.identity.match:
        events.append(IDENTITY_MISMATCH)
    elif obs.identity_error is None:
        events.append(AUTHORIZED)
    if any(obj.label == PHONE_LABEL for obj in obs.objects):
        events.append(PHONE_DETECTED)
    if obs.pose is not None and (abs(obs.pose.yaw) > yaw_limit or abs(obs.pose.pitch) > pitch_limit):
        events.append(LOOKING_AWAY)
    return events
