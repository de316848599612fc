"""The skip rule as the consumer applies it (wiring, with the scripted analyzer through the real decoder, rules,
services and database): which frames re-use the phone detector's result, the bound on how many in a row, the
per-exam switch, and the evidence a flag carries when its frames re-used a measurement.

The change test and the real detector are in tests/proctoring/vision/test_change.py.
"""

from __future__ import annotations

import pytest

from proctoring.models import Flag, Observation
from proctoring.pool import get_pool
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


async def test_an_unchanged_picture_reuses_the_phone_detector_at_most_twice_in_a_row(alice):
    attempt = await db(sitting)(alice)
    socket, _ = await join(alice, attempt.pk)
    for _ in range(6):
        await show(socket, "alice")
    await socket.disconnect()
    assert await stored_reuse(attempt) == [None, 1, 1, None, 4, 4]
    memories = [job.objects_memory for job in get_pool().jobs]
    assert memories[0] is None
    assert [(m.seq, m.reuses_left) for m in memories[1:]] == [(1, 2), (1, 1), (1, 0), (4, 2), (4, 1)]


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


async def test_a_phone_flag_says_which_frame_the_detector_measured_and_why(alice):
    attempt = await db(sitting)(alice, k=3, n=5)
    socket, _ = await join(alice, attempt.pk)
    events = [e for _ in range(3) for e in await show(socket, "phone")]
    await socket.disconnect()
    assert "PHONE_DETECTED" in [e["event"] for e in events]
    flag = await db(Flag.objects.get)(session__attempt=attempt, kind="phone_detected")
    assert flag.started_seq == 3 and flag.details["objects_measured_on_seq"] == 1
    assert "re-used from frame 1" in flag.details["skip_rule"]
    assert await stored_reuse(attempt) == [None, 1, 1]


async def stored_identity_reuse(attempt) -> list[tuple[int | None, float | None]]:
    return await db(
        lambda: list(Observation.objects.filter(session__attempt=attempt).order_by("seq").values_list(
            "identity_from_seq", "similarity"))
    )()  # fmt: skip


async def test_an_unchanged_picture_reuses_a_match_but_never_a_mismatch(alice):
    attempt = await db(sitting)(alice)
    socket, _ = await join(alice, attempt.pk)
    for scene in ("alice", "alice", "alice", "stranger", "stranger", "alice", "alice"):
        await show(socket, scene)
    await socket.disconnect()
    # A match is re-used while the picture has not changed; the stranger changes it (measured, refused), and is
    # measured again on the unchanged next frame; back to Alice, a match is measured before it is re-used.
    assert await stored_identity_reuse(attempt) == [
        (None, 0.82), (1, 0.82), (1, 0.82), (None, 0.12), (None, 0.12), (None, 0.82), (6, 0.82)
    ]  # fmt: skip


async def test_an_identity_flag_counts_the_matches_of_its_window_that_were_reused(alice):
    attempt = await db(sitting)(alice, k=2, n=4)
    socket, _ = await join(alice, attempt.pk)
    for scene in ("alice", "alice", "stranger", "stranger"):
        await show(socket, scene)
    await socket.disconnect()
    flag = await db(Flag.objects.get)(session__attempt=attempt, kind="identity_mismatch")
    assert flag.details["window_matches_reused"] == 1
