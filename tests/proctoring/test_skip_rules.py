"""The skip rule as the consumer applies it (wiring, with the scripted analyzer through the real decoder, rules,
services and database): which frames re-use the face and phone detectors' results, the bound on how many in a row, the
per-exam switch, and the evidence a flag carries when its frames re-used a measurement.

The change test and the real detector are in tests/proctoring/vision/test_change.py.
"""

from __future__ import annotations

import pytest

from proctoring.models import Flag, Observation, ProctoringSession
from proctoring.pool import get_pool
from proctoring.pool.base import OK, AnalysisResult, objects_memory_after
from tests.factories import StudentFactory
from tests.proctoring.test_consumer import (  # noqa: F401 - inline_pool is an autouse fixture
    db,
    inline_pool,
    join,
    show,
    sitting,
)

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def alice():
    return StudentFactory(username="alice", first_name="Alice")


async def stored_reuse(attempt) -> list[int | None]:
    return await db(
        lambda: list(Observation.objects.filter(session__attempt=attempt).order_by("seq").values_list(
            "objects_from_seq", flat=True))
    )()  # fmt: skip


async def session_of(attempt) -> int:
    return await db(lambda: ProctoringSession.objects.get(attempt=attempt).pk)()


async def test_an_unchanged_picture_reuses_the_phone_detector_at_most_twice_in_a_row(alice):
    attempt = await db(sitting)(alice)
    socket, _ = await join(alice, attempt.pk)
    for _ in range(7):
        await show(socket, "alice")
    await socket.disconnect()
    # The first measurement is re-used 2 - session id % 3 times (the phase spreads a room's forced re-measurements),
    # every later one twice.
    first = 2 - await session_of(attempt) % 3
    expected = [None] + [1] * first
    while len(expected) < 7:
        measured = len(expected) + 1
        expected += [None, measured, measured]
    assert await stored_reuse(attempt) == expected[:7]
    memories = [job.objects_memory for job in get_pool().jobs]
    assert memories[0] is None
    assert (memories[1].seq, memories[1].reuses_left) == (1, first)
    again = memories[first + 2]
    assert (again.seq, again.reuses_left) == (first + 2, 2)


@pytest.mark.parametrize("session_id,reuses", [(30, 2), (31, 1), (32, 0), (33, 2)])
def test_a_connections_first_measurement_is_reused_fewer_times_by_its_phase(session_id, reuses):
    import base64

    measured = AnalysisResult(job_id="j", status=OK, observation={"objects": []},
                              signature_b64=base64.b64encode(bytes(768)).decode())  # fmt: skip
    first = objects_memory_after(None, seq=1, result=measured, limit=2, phase=session_id)
    assert first is not None and first.reuses_left == reuses
    # A later fresh measurement (the picture changed) gets the whole bound again.
    assert objects_memory_after(first, seq=2, result=measured, limit=2, phase=session_id).reuses_left == 2


async def test_a_changed_picture_always_runs_the_detector(alice):
    attempt = await db(sitting)(alice)
    socket, _ = await join(alice, attempt.pk)
    for scene in ("alice", "phone", "alice", "nobody"):
        await show(socket, scene)
    await socket.disconnect()
    assert await stored_reuse(attempt) == [None, None, None, None]


async def test_an_exam_can_turn_the_skip_rule_off(alice):
    attempt = await db(sitting)(alice, object_reuse_frames=0)
    socket, _ = await join(alice, attempt.pk)
    for _ in range(3):
        await show(socket, "alice")
    await socket.disconnect()
    assert await stored_reuse(attempt) == [None, None, None]
    assert all(job.objects_memory is None for job in get_pool().jobs)


@pytest.fixture
def phase_zero(monkeypatch):
    """Every connection's first measurement re-used the whole bound, whatever its session id."""
    from proctoring import consumers

    monkeypatch.setattr(consumers, "objects_memory_after", lambda memory, **kw: objects_memory_after(
        memory, **{**kw, "phase": 0}))  # fmt: skip


@pytest.mark.parametrize("scene,event,faces", [("phone", "PHONE_DETECTED", 1), ("two_faces", "MULTIPLE_FACES", 2)])
async def test_a_flag_on_frames_that_reused_the_detectors_says_which_frame_they_measured_and_why(
    alice, phase_zero, scene, event, faces
):
    attempt = await db(sitting)(alice, k=3, n=5)
    socket, _ = await join(alice, attempt.pk)
    events = [e for _ in range(3) for e in await show(socket, scene)]
    await socket.disconnect()
    assert event in [e["event"] for e in events]
    flag = await db(Flag.objects.get)(session__attempt=attempt, kind=event.lower())
    assert flag.started_seq == 3 and flag.details["objects_measured_on_seq"] == 1
    assert "face and phone detectors' results were re-used from frame 1" in flag.details["skip_rule"]
    assert await stored_reuse(attempt) == [None, 1, 1]
    # The workers were handed the faces measured on frame 1, and took them as they were.
    memories = [job.objects_memory for job in get_pool().jobs]
    assert [len(m.faces) for m in memories[1:]] == [faces, faces]


async def stored_identity_reuse(attempt) -> list[tuple[int | None, float | None]]:
    return await db(
        lambda: list(Observation.objects.filter(session__attempt=attempt).order_by("seq").values_list(
            "identity_from_seq", "similarity"))
    )()  # fmt: skip


async def test_an_unchanged_picture_reuses_a_match_but_never_a_mismatch(alice):
    attempt = await db(sitting)(alice, object_reuse_frames=9)  # a long bound, so the phase cannot end a re-use run
    socket, _ = await join(alice, attempt.pk)
    for scene in ("alice", "alice", "stranger", "stranger", "alice", "alice"):
        await show(socket, scene)
    await socket.disconnect()
    # A match is re-used while the picture has not changed; the stranger changes it (measured, refused), and is
    # measured again on the unchanged next frame; back to Alice, a match is measured before it is re-used.
    stored = await stored_identity_reuse(attempt)
    if await session_of(attempt) % 10 == 9:  # this session's first measurement may not be re-used at all
        stored[1] = (1, stored[1][1])
    assert stored == [(None, 0.82), (1, 0.82), (None, 0.12), (None, 0.12), (None, 0.82), (5, 0.82)]


async def test_an_identity_flag_counts_the_matches_of_its_window_that_were_reused(alice, phase_zero):
    attempt = await db(sitting)(alice, k=2, n=4)
    socket, _ = await join(alice, attempt.pk)
    for scene in ("alice", "alice", "stranger", "stranger"):
        await show(socket, scene)
    await socket.disconnect()
    flag = await db(Flag.objects.get)(session__attempt=attempt, kind="identity_mismatch")
    assert flag.details["window_matches_reused"] == 1
