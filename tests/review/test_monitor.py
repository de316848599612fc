"""The instructor's live monitor socket, through the real ASGI stack (origin check, session auth, routing), with the
real proctoring consumer on the students' side. The frames are analysed by the scripted wiring analyzer of the
consumer tests (tests/proctoring/fakes.py); this tests wiring, not vision."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils import timezone

from exams.models import Attempt
from examsite.asgi import application
from proctoring import pool as pool_module
from proctoring.models import InstructorMessage, ProctoringSession
from proctoring.pool.base import worker_init
from tests.factories import EnrollmentFactory, ExamFactory
from tests.proctoring.test_consumer import InlinePool, enrol, show

pytestmark = [pytest.mark.django_db(transaction=True)]
db = sync_to_async


@pytest.fixture(autouse=True)
def inline_pool():
    worker_init(analyzer_path="tests.proctoring.fakes:scripted_analyzer")
    previous = pool_module.set_pool(InlinePool())
    yield
    pool_module.set_pool(previous)


def cookie_for(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


async def socket_for(user, path: str) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://testserver")]
    if user is not None:
        headers.append((b"cookie", f"sessionid={await db(cookie_for)(user)}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


def sitting(exam, student) -> Attempt:
    EnrollmentFactory(exam=exam, student=student)
    enrol(student)
    now = timezone.now()
    return Attempt.objects.create(exam=exam, student=student, started_at=now, deadline=now + timedelta(hours=1))


async def monitor_of(user, exam_id: int) -> tuple[WebsocketCommunicator, dict]:
    socket = await socket_for(user, f"/ws/monitor/{exam_id}/")
    connected, _ = await socket.connect()
    assert connected
    return socket, await socket.receive_json_from(timeout=5)


async def refusal(user, exam_id: int) -> int:
    socket = await socket_for(user, f"/ws/monitor/{exam_id}/")
    connected, _ = await socket.connect()
    assert connected
    message = await socket.receive_output(timeout=5)
    assert message["type"] == "websocket.close"
    return message["code"]


async def proctor(user, attempt_id: int) -> WebsocketCommunicator:
    socket = await socket_for(user, f"/ws/proctor/{attempt_id}/")
    connected, _ = await socket.connect()
    assert connected
    ready = await socket.receive_json_from(timeout=5)
    assert ready["event"] == "READY", ready
    return socket


async def statuses_until(monitor: WebsocketCommunicator, done) -> list[dict]:
    seen: list[dict] = []
    while not done(seen):
        event = await monitor.receive_json_from(timeout=5)
        if event["event"] == "STATUS":
            seen.append(event)
    return seen


async def test_the_monitor_refuses_anyone_but_the_exams_instructor(alice, diana, exam):
    assert await refusal(None, exam.pk) == 4401
    assert await refusal(alice, exam.pk) == 4403
    assert await refusal(diana, exam.pk) == 4403
    assert await refusal(diana, 999_999) == 4403  # an id that does not exist reads the same


async def test_charlie_gets_the_students_streaming_now_on_connect(charlie, alice, exam):
    attempt = await db(sitting)(exam, alice)
    await db(ProctoringSession.objects.create)(attempt=attempt, started_at=timezone.now())
    monitor, snapshot = await monitor_of(charlie, exam.pk)
    assert snapshot["event"] == "SNAPSHOT"
    assert [t["attempt_id"] for t in snapshot["tiles"]] == [attempt.pk]
    assert snapshot["tiles"][0]["student"] == "Alice Adams"
    await monitor.disconnect()


async def test_two_streaming_students_appear_and_a_message_reaches_only_alice(charlie, alice, bob, exam):
    alice_attempt = await db(sitting)(exam, alice)
    bob_attempt = await db(sitting)(exam, bob)
    monitor, snapshot = await monitor_of(charlie, exam.pk)
    # Both are on the roster before they stream: enrolled, attempt open, proctoring not connected yet.
    assert {t["attempt_id"]: t["state"] for t in snapshot["tiles"]} == {
        alice_attempt.pk: "setting_up", bob_attempt.pk: "setting_up"}  # fmt: skip

    alice_socket = await proctor(alice, alice_attempt.pk)
    bob_socket = await proctor(bob, bob_attempt.pk)
    await show(alice_socket, "alice")
    await show(bob_socket, "phone")
    statuses = await statuses_until(
        monitor,
        lambda seen: (
            {s["attempt_id"] for s in seen if s.get("attention")} == {alice_attempt.pk, bob_attempt.pk}
            and any(s.get("alerts") for s in seen)
        ),
    )
    by_attempt = {s["attempt_id"]: s for s in statuses if s.get("attention")}
    assert by_attempt[alice_attempt.pk]["student"] == "Alice Adams"
    assert by_attempt[alice_attempt.pk]["attention"]["label"] == "Focused"
    assert by_attempt[bob_attempt.pk]["attention"]["label"] == "Away"
    assert any(a["event"] == "PHONE_DETECTED" for s in statuses for a in s.get("alerts", []))
    assert any(s.get("thumbnail") for s in statuses)  # the first frame of each student carries one

    await monitor.send_json_to(
        {"type": "message", "attempt_id": alice_attempt.pk, "message": "Please face the camera."}
    )
    sent = await monitor.receive_json_from(timeout=5)
    while sent["event"] == "STATUS":
        sent = await monitor.receive_json_from(timeout=5)
    assert sent["event"] == "MESSAGE_SENT" and sent["attempt_id"] == alice_attempt.pk
    received = await alice_socket.receive_json_from(timeout=5)
    assert await bob_socket.receive_nothing(timeout=0.3)
    record = await db(InstructorMessage.objects.select_related("sender").get)()
    assert received == {
        "event": "INSTRUCTOR_MESSAGE",
        "message": "Please face the camera.",
        "message_id": record.pk,
        "at": record.sent_at.timestamp(),
    }
    assert (record.attempt_id, record.sender.username, record.text) == (
        alice_attempt.pk,
        "charlie",
        "Please face the camera.",
    )
    for socket in (alice_socket, bob_socket, monitor):
        await socket.disconnect()


async def test_messages_to_other_exams_finished_attempts_or_garbage_are_refused(charlie, alice, bob, exam):
    other_exam = await db(ExamFactory)(owner=charlie)
    elsewhere = await db(sitting)(other_exam, bob)
    finished = await db(sitting)(exam, alice)
    finished.status = Attempt.Status.SUBMITTED
    await db(finished.save)()
    monitor, _ = await monitor_of(charlie, exam.pk)
    for payload, text in [
        ({"type": "message", "attempt_id": elsewhere.pk, "message": "Hi"}, "No such attempt in this exam."),
        ({"type": "message", "attempt_id": finished.pk, "message": "Hi"}, "finished the exam"),
        ({"type": "message", "attempt_id": finished.pk, "message": "   "}, "Write a message first."),
        ({"type": "message", "attempt_id": "1", "message": "Hi"}, "attempt_id must be a number"),
        ({"type": "shout"}, "Unknown message type"),
    ]:
        await monitor.send_json_to(payload)
        reply = await monitor.receive_json_from(timeout=5)
        assert reply["event"] == "ERROR" and text in reply["message"], (payload, reply)
    await monitor.send_to(text_data="not json")
    assert (await monitor.receive_json_from(timeout=5))["event"] == "ERROR"
    # Deep nesting raised RecursionError out of the monitor socket (1011); now it is an ERROR and the socket stays.
    for hostile in ("[" * 2000 + "]" * 2000, '{"a":' * 600 + "1" + "}" * 600, "x" * 50_000, "\u0000", "[]", "1e999"):
        await monitor.send_to(text_data=hostile)
        assert "16 deep" in (await monitor.receive_json_from(timeout=5))["message"], hostile[:20]
    await monitor.send_json_to({"type": "ping"})
    assert (await monitor.receive_json_from(timeout=5))["event"] == "PONG"
    assert not await db(InstructorMessage.objects.exists)()
    await monitor.disconnect()


async def test_a_status_posted_to_the_exams_group_reaches_the_monitor(charlie, exam):
    from channels.layers import get_channel_layer

    from proctoring.consumers import monitor_group

    monitor, _ = await monitor_of(charlie, exam.pk)
    await get_channel_layer().group_send(
        monitor_group(exam.pk),
        {"type": "monitor.status", "attempt_id": 5, "student": "x", "connection": "stalled", "at": 1.0},
    )
    event = await asyncio.wait_for(monitor.receive_json_from(), 5)
    assert event == {"event": "STATUS", "attempt_id": 5, "student": "x", "connection": "stalled", "at": 1.0}
    await monitor.disconnect()


async def test_a_student_who_starts_the_exam_shows_as_setting_up_before_proctoring_connects(charlie, alice, exam):
    from channels.layers import get_channel_layer

    from exams.models import Enrollment
    from exams.services import attempt_start
    from proctoring.consumers import monitor_group

    await db(Enrollment.objects.create)(exam=exam, student=alice)
    layer = get_channel_layer()
    watcher = await layer.new_channel()
    await layer.group_add(monitor_group(exam.pk), watcher)
    attempt = await db(attempt_start)(exam=exam, student=alice)
    status = await asyncio.wait_for(layer.receive(watcher), timeout=5)
    assert (status["attempt_id"], status["student_id"], status["connection"]) == (attempt.pk, alice.pk, "setting_up")
    assert status["student"] == "Alice Adams"


async def test_thumbnails_flow_for_tiles_on_screen_and_wait_for_the_others(charlie, exam):
    """The page says which tiles it shows: their thumbnails arrive, an off-screen tile's newest waits until it shows."""
    from channels.layers import get_channel_layer

    from proctoring.consumers import monitor_group

    layer = get_channel_layer()
    monitor, _ = await monitor_of(charlie, exam.pk)

    async def post(attempt_id: int, thumbnail: str, at: float) -> dict:
        await layer.group_send(
            monitor_group(exam.pk),
            {"type": "monitor.status", "attempt_id": attempt_id, "student_id": attempt_id + 100,
             "connection": "connected", "thumbnail": thumbnail, "at": at},
        )  # fmt: skip
        return await asyncio.wait_for(monitor.receive_json_from(), 5)

    # A client that never says what it shows gets every picture (scripts, older pages).
    assert (await post(1, "one-a", 1.0))["thumbnail"] == "one-a"
    await monitor.send_json_to({"type": "visible", "attempt_ids": [1]})
    await asyncio.sleep(0.1)
    assert (await post(1, "one-b", 2.0))["thumbnail"] == "one-b"
    off_screen = await post(2, "two-a", 3.0)
    assert "thumbnail" not in off_screen and off_screen["connection"] == "connected"  # the rest still flows
    assert "thumbnail" not in await post(2, "two-b", 4.0)
    # Student 2 scrolls into view: only the newest picture comes, once, with its time.
    await monitor.send_json_to({"type": "visible", "attempt_ids": [1, 2]})
    assert await asyncio.wait_for(monitor.receive_json_from(), 5) == {
        "event": "STATUS", "attempt_id": 2, "student_id": 102, "thumbnail": "two-b", "at": 4.0,
    }  # fmt: skip
    await monitor.send_json_to({"type": "visible", "attempt_ids": [2]})
    await monitor.send_json_to({"type": "ping"})
    assert (await asyncio.wait_for(monitor.receive_json_from(), 5))["event"] == "PONG"  # nothing held was resent
    for bad in ("all", [True], ["1"], list(range(1001)), {"a": 1}):
        await monitor.send_json_to({"type": "visible", "attempt_ids": bad})
        refused = await asyncio.wait_for(monitor.receive_json_from(), 5)
        assert refused["event"] == "ERROR" and "at most 1000 numbers" in refused["message"], bad
    assert (await post(2, "two-c", 5.0))["thumbnail"] == "two-c"  # a refused list left the last good one in place
    await monitor.disconnect()


async def test_the_monitor_hears_of_a_frame_only_when_the_tile_would_change(charlie, alice, exam):
    attempt = await db(sitting)(exam, alice)
    monitor, _ = await monitor_of(charlie, exam.pk)
    socket = await proctor(alice, attempt.pk)
    assert (await monitor.receive_json_from(timeout=5))["connection"] == "connected"  # on connect
    for _ in range(4):
        await show(socket, "alice")  # the same focused face four times
    first = await monitor.receive_json_from(timeout=5)
    assert first["attention"]["label"] == "Focused" and first["thumbnail"]
    assert await monitor.receive_nothing(timeout=0.3)  # the three frames after it changed nothing on the tile
    await show(socket, "phone")
    changed = await monitor.receive_json_from(timeout=5)
    assert "PHONE_DETECTED" in changed["conditions"] and changed["alerts"][0]["event"] == "PHONE_DETECTED"
    for s in (socket, monitor):
        await s.disconnect()


def test_what_counts_as_a_change_on_the_tile():
    from proctoring.consumers import ATTENTION_STEP, MonitorChanges

    told = MonitorChanges()
    focused = {"label": "Focused", "conditions": ()}
    assert told.worth_sending(score=90, **focused)  # the first frame
    assert not told.worth_sending(score=90 - ATTENTION_STEP + 1, **focused)  # a wobble of the score
    assert told.worth_sending(score=90 - ATTENTION_STEP, **focused)  # a real move, measured from what was sent
    assert not told.worth_sending(score=88, **focused)
    assert told.worth_sending(score=88, label="Focused", conditions=("LOOKING_AWAY",))  # a condition
    assert told.worth_sending(score=88, label="Distracted", conditions=("LOOKING_AWAY",))  # a label
    assert told.worth_sending(score=None, label=None, conditions=("LOOKING_AWAY",))  # no attention any more
    for always in ({"alerts": True}, {"open_flags": True}, {"thumbnail": True}):
        assert told.worth_sending(score=None, label=None, conditions=("LOOKING_AWAY",), **always), always
