"""rules.step() and rules.rescore() without the per-frame deep copy: same results, independent states."""

from __future__ import annotations

from dataclasses import fields

from proctoring import rules
from proctoring.rules import FrameRecord, RuleSettings, RuleState


def _frames() -> list[FrameRecord]:
    """Alice: calm, then out of view, a phone, looking away and a stranger's face, then calm again."""
    out = []
    for seq in range(1, 61):
        values: dict = {"face_count": 1, "face_scores": (0.9,), "identity_checked": True, "similarity": 0.6}
        values.update(identity_threshold=0.35, yaw=2.0, pitch=1.0)
        if 5 <= seq < 12:
            values.update(face_count=0, face_scores=(), identity_checked=False, similarity=None, yaw=None, pitch=None)
        elif 15 <= seq < 22:
            values["phone_score"] = 0.8
        elif 25 <= seq < 33:
            values["yaw"] = 45.0
        elif 36 <= seq < 42:
            values["similarity"] = 0.2
        elif 45 <= seq < 49:
            values.update(face_count=2, face_scores=(0.9, 0.7), identity_checked=False, similarity=None)
        out.append(FrameRecord(seq=seq, at=1000.0 + 2 * seq, **values))
    return out


def test_rescore_gives_exactly_what_stepping_frame_by_frame_gives():
    settings = RuleSettings()
    state = RuleState()
    spans: dict[str, rules.FlagSpan] = {}
    done: list[rules.FlagSpan] = []
    for record in _frames():
        decision = rules.step(state, record, settings)
        state = decision.state
        for close in decision.closes:
            span = spans.pop(close.kind)
            done.append(rules.FlagSpan(**{**span.__dict__, "ended_seq": close.seq, "ended_at": close.at}))
        for o in decision.opens:
            spans[o.kind] = rules.FlagSpan(o.kind, o.seq, o.at, None, None, o.confidence, o.threshold, o.details)
    expected = sorted([*done, *spans.values()], key=lambda s: (s.started_seq, s.kind))

    got = rules.rescore(_frames(), settings)

    assert got == expected
    assert {s.kind for s in got} == set(rules.CHECKS)


def test_step_leaves_alices_earlier_state_untouched():
    settings = RuleSettings()
    state = RuleState()
    snapshots = []
    for record in _frames():
        snapshots.append((state, state.to_dict()))
        state = rules.step(state, record, settings).state
    for before, as_dict in snapshots:
        assert before.to_dict() == as_dict


def test_a_state_copy_shares_no_containers_with_the_original():
    state = RuleState()
    for record in _frames()[:30]:
        state = rules.step(state, record, RuleSettings()).state
    assert rules.LOOKING_AWAY in state.open_flags
    copied = state.copy()

    copied.windows[rules.FACE_NOT_FOUND].append(1)
    copied.open_flags[rules.LOOKING_AWAY]["seq"] = -1
    copied.attention.append(0)
    copied.last_sent["X"] = 1.0

    assert copied.to_dict() != state.to_dict()
    assert len(copied.windows[rules.FACE_NOT_FOUND]) == len(state.windows[rules.FACE_NOT_FOUND]) + 1
    assert state.open_flags[rules.LOOKING_AWAY]["seq"] == 25 + 2
    assert len(copied.attention) == len(state.attention) + 1
    assert "X" not in state.last_sent


def test_to_dict_names_every_field_of_the_state():
    assert list(RuleState().to_dict()) == [f.name for f in fields(RuleState)]
