"""A submit or an expiry elsewhere (the exam page's form, another tab, a sweep) ends the live socket's session."""

from __future__ import annotations

from datetime import timedelta

import pytest

from exams.services import attempt_expire, attempt_submit
from proctoring.models import ProctoringSession
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


async def test_submitting_tells_alices_socket_the_session_ended(alice):
    attempt = await db(sitting)(alice)
    socket, _ = await join(alice, attempt.pk)
    await show(socket, "alice")

    await db(attempt_submit)(attempt=attempt)

    ended = await socket.receive_json_from(timeout=5)
    assert ended["event"] == "SESSION_ENDED" and ended["reason"] == "attempt_closed"
    assert ended["message"] == "Your attempt has ended, so proctoring has stopped."
    closed = await socket.receive_output(timeout=5)
    assert (closed["type"], closed["code"]) == ("websocket.close", 1000)
    session = await db(ProctoringSession.objects.get)(attempt=attempt)
    assert (session.status, session.end_reason) == ("ended", "attempt_closed")


async def test_an_expiry_sweep_tells_alices_socket_too(alice):
    attempt = await db(sitting)(alice)
    socket, _ = await join(alice, attempt.pk)

    await db(attempt_expire)(attempt=attempt, now=attempt.deadline + timedelta(minutes=5))

    ended = await socket.receive_json_from(timeout=5)
    assert (ended["event"], ended["reason"]) == ("SESSION_ENDED", "attempt_closed")
    assert (await socket.receive_output(timeout=5))["type"] == "websocket.close"


async def test_a_second_submit_sends_nothing_more(alice):
    attempt = await db(sitting)(alice)
    socket, _ = await join(alice, attempt.pk)
    await db(attempt_submit)(attempt=attempt)
    assert (await socket.receive_json_from(timeout=5))["event"] == "SESSION_ENDED"
    assert (await socket.receive_output(timeout=5))["type"] == "websocket.close"

    again = await db(attempt_submit)(attempt=attempt)

    assert again.status == "submitted"
    assert await socket.receive_nothing(timeout=0.3)
