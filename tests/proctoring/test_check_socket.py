"""The system check's socket (/ws/check/): READY and a ping for a signed-in user, refused otherwise, and nothing
recorded anywhere (issue 12: the check used to open the attempt's proctoring session)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from examsite.asgi import application
from proctoring.models import BrowserSignal, ProctoringSession, StreamEvent
from tests.factories import StudentFactory

pytestmark = [pytest.mark.django_db(transaction=True)]
db = sync_to_async


def cookie_for(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


async def check_socket(user) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://testserver")]
    if user is not None:
        headers.append((b"cookie", f"sessionid={await db(cookie_for)(user)}".encode()))
    socket = WebsocketCommunicator(application, "/ws/check/", headers=headers)
    connected, _ = await socket.connect()
    assert connected
    return socket


async def test_the_check_socket_answers_ready_and_ping_and_records_nothing():
    alice = await db(StudentFactory)(username="alice")
    socket = await check_socket(alice)
    assert await socket.receive_json_from() == {"event": "READY", "check": True}
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from() == {"event": "PONG"}
    await socket.send_json_to({"type": "signal", "signal": "tab_hidden"})
    assert (await socket.receive_json_from())["event"] == "ERROR"
    await socket.disconnect()
    counts = await db(lambda: (ProctoringSession.objects.count(), StreamEvent.objects.count(),
                               BrowserSignal.objects.count()))()  # fmt: skip
    assert counts == (0, 0, 0)


async def test_the_check_socket_refuses_anyone_not_signed_in_and_any_frame():
    socket = await check_socket(None)
    assert (await socket.receive_output())["type"] == "websocket.close"
    alice = await db(StudentFactory)(username="alice")
    socket = await check_socket(alice)
    await socket.receive_json_from()
    await socket.send_to(bytes_data=b"\xff\xd8\xff")
    closed = await socket.receive_output()
    assert closed == {"type": "websocket.close", "code": 1003}


async def test_a_database_outage_while_the_user_is_looked_up_is_a_clean_4503(monkeypatch):
    # The user is looked up after the accept now (examsite.websocket.UserOnFirstUse), inside the consumer: an outage
    # there must close with "try again later", as the proctoring socket does, not end the socket with a traceback.
    from django.db import OperationalError

    def outage(user):
        raise OperationalError("the database is gone")

    alice = await db(StudentFactory)(username="alice")
    monkeypatch.setattr("proctoring.check_socket.signed_in", outage)
    socket = await check_socket(alice)
    assert await socket.receive_output() == {"type": "websocket.close", "code": 4503}
