"""The proctoring WebSocket, end to end through the real ASGI stack (origin check, session auth, routing).

Wiring tests: the analyzer is scripted by frame colour (tests/proctoring/fakes.py) and runs in a thread behind the
pool interface; the frames still go through the real decoder, rules, services and database. The real worker pools
and models are tested in test_pool.py.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import OperationalError
from django.test import Client
from django.utils import timezone

from exams.models import Attempt
from examsite.asgi import application
from proctoring import pool as pool_module
from proctoring.consumers import attempt_group, monitor_group
from proctoring.models import BrowserSignal, FaceTemplate, Flag, Observation, ProctoringSession, StreamEvent
from proctoring.pool.base import AnalysisResult, FrameJob, InferencePool, analyze_job, worker_init
from proctoring.selectors import current_embedding_model
from proctoring.services.evidence import snapshot_path
from tests.factories import ExamFactory, StudentFactory
from tests.proctoring.fakes import frame

pytestmark = [pytest.mark.django_db(transaction=True)]

ANALYSED = {"ATTENTION_UPDATE", "FRAME_REJECTED", "ERROR", "OVERLOADED", "SESSION_ENDED"}


class InlinePool(InferencePool):
    """The pool interface with the worker's own analyze_job() run in a thread: wiring only."""

    name = "inline"

    def __init__(self) -> None:
        super().__init__(timeout_s=3.0)
        self.jobs: list[FrameJob] = []

    async def _submit(self, job: FrameJob, reply_channel: str | None) -> AnalysisResult:
        self.jobs.append(job)
        return AnalysisResult.from_dict(await asyncio.to_thread(analyze_job, job))


@pytest.fixture(autouse=True)
def inline_pool(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.PRIVATE_STORAGE_DIR = tmp_path / "private"
    worker_init(analyzer_path="tests.proctoring.fakes:scripted_analyzer")
    pool = InlinePool()
    previous = pool_module.set_pool(pool)
    yield pool
    pool_module.set_pool(previous)


def enrol(user) -> None:
    FaceTemplate.objects.create(
        user=user,
        pack="default",
        model_id=current_embedding_model(pack="default")[1],
        embedding=np.ones(512, "<f4").tobytes(),
        dim=512,
    )


def sitting(user, *, enrolled: bool = True, **proctoring_settings) -> Attempt:
    exam = ExamFactory(proctoring_settings=proctoring_settings)
    if enrolled:
        enrol(user)
    now = timezone.now()
    return Attempt.objects.create(exam=exam, student=user, started_at=now, deadline=now + timedelta(hours=1))


@pytest.fixture
def alice():
    return StudentFactory(username="alice", first_name="Alice")


@pytest.fixture
def bob():
    return StudentFactory(username="bob")


def cookie_for(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


async def open_socket(user, attempt_id: int, *, origin: bytes = b"http://testserver") -> WebsocketCommunicator:
    headers = [(b"origin", origin)]
    if user is not None:
        headers.append((b"cookie", f"sessionid={await sync_to_async(cookie_for)(user)}".encode()))
    return WebsocketCommunicator(application, f"/ws/proctor/{attempt_id}/", headers=headers)


async def join(user, attempt_id: int) -> tuple[WebsocketCommunicator, dict]:
    socket = await open_socket(user, attempt_id)
    connected, _ = await socket.connect()
    assert connected
    ready = await socket.receive_json_from(timeout=5)
    assert ready["event"] == "READY", ready
    return socket, ready


async def refusal_code(user, attempt_id: int) -> int:
    socket = await open_socket(user, attempt_id)
    connected, _ = await socket.connect()
    assert connected  # accepted, then closed with the code, so that browsers see the code
    message = await socket.receive_output(timeout=5)
    assert message["type"] == "websocket.close"
    return message["code"]


async def until(socket: WebsocketCommunicator, names: set[str], timeout: float = 5.0) -> list[dict]:
    """Events up to and including the first whose name is in `names`."""
    seen = []
    while True:
        event = await socket.receive_json_from(timeout=timeout)
        seen.append(event)
        if event["event"] in names:
            return seen


async def show(socket: WebsocketCommunicator, scene: str) -> list[dict]:
    """Send one frame and return every event it caused (the client waits for the result, as a paced client does)."""
    await socket.send_to(bytes_data=frame(scene))
    return await until(socket, ANALYSED)


def names(events: list[dict]) -> list[str]:
    return [e["event"] for e in events]


db = sync_to_async


# --- Who may connect -------------------------------------------------------------------------------------------


async def test_it_closes_with_4401_when_nobody_is_signed_in(alice):
    attempt = await db(sitting)(alice)
    assert await refusal_code(None, attempt.pk) == 4401


async def test_it_rejects_other_students_session_with_4403(alice, bob):
    attempt = await db(sitting)(alice)
    await db(enrol)(bob)
    assert await refusal_code(bob, attempt.pk) == 4403


async def test_it_closes_with_4404_for_an_attempt_that_does_not_exist(alice):
    await db(sitting)(alice)
    assert await refusal_code(alice, 999999) == 4404


async def test_it_closes_with_4409_once_the_attempt_is_submitted(alice):
    attempt = await db(sitting)(alice)
    await db(Attempt.objects.filter(pk=attempt.pk).update)(status=Attempt.Status.SUBMITTED)
    assert await refusal_code(alice, attempt.pk) == 4409


async def test_it_closes_with_4412_when_alice_has_not_enrolled_her_face(alice):
    attempt = await db(sitting)(alice, enrolled=False)
    assert await refusal_code(alice, attempt.pk) == 4412


async def test_it_closes_with_4412_when_the_enrolment_came_from_another_model(alice):
    attempt = await db(sitting)(alice)
    await db(FaceTemplate.objects.filter(user=alice).update)(pack="insightface-buffalo_l")
    assert await refusal_code(alice, attempt.pk) == 4412


async def test_a_reconnect_storm_is_refused_with_4429(alice):
    attempt = await db(sitting)(alice)
    for _ in range(12):
        socket, _ = await join(alice, attempt.pk)
        await socket.disconnect()
    assert await refusal_code(alice, attempt.pk) == 4429


@pytest.mark.parametrize("path", ["/ws/proctor/abc/", "/ws/nowhere/", "/ws/proctor/1/extra/"])
async def test_an_unknown_websocket_path_is_refused_cleanly_with_4404(alice, path):
    # It was HTTP 500 and a traceback ("No route found for path").
    cookie = await sync_to_async(cookie_for)(alice)
    socket = WebsocketCommunicator(
        application, path, headers=[(b"origin", b"http://testserver"), (b"cookie", f"sessionid={cookie}".encode())]
    )
    connected, _ = await socket.connect()
    assert connected
    message = await socket.receive_output(timeout=5)
    assert message == {"type": "websocket.close", "code": 4404}
    assert await db(ProctoringSession.objects.count)() == 0


async def test_it_refuses_a_handshake_from_another_origin(alice):
    attempt = await db(sitting)(alice)
    socket = await open_socket(alice, attempt.pk, origin=b"https://evil.example")
    connected, _ = await socket.connect()
    assert not connected
    assert await db(ProctoringSession.objects.count)() == 0


# --- Events ----------------------------------------------------------------------------------------------------


async def test_alice_gets_each_event_of_the_vocabulary(alice):
    attempt = await db(sitting)(alice)
    socket, ready = await join(alice, attempt.pk)
    assert ready["resumed"] is False and ready["frame_interval_ms"] == 2000 and ready["max_frame_bytes"] == 1_000_000

    events = await show(socket, "alice")
    assert names(events) == ["FRAME_ACK", "AUTHORIZED", "ATTENTION_UPDATE"]
    assert events[0] == {"event": "FRAME_ACK", "seq": 1}
    assert events[-1] == {"event": "ATTENTION_UPDATE", "score": 100, "label": "Focused", "seq": 1}
    assert events[1]["seq"] == 1
    assert "FACE_NOT_FOUND" in names(await show(socket, "nobody"))
    multiple = [e for e in await show(socket, "two_faces") if e["event"] == "MULTIPLE_FACES"]
    assert multiple[0]["count"] == 2
    mismatch = [e for e in await show(socket, "stranger") if e["event"] == "IDENTITY_MISMATCH"]
    assert mismatch[0]["similarity"] == 0.12
    assert "PHONE_DETECTED" in names(await show(socket, "phone"))
    away = [e for e in await show(socket, "looking_away") if e["event"] == "LOOKING_AWAY"]
    assert away[0]["score"] == 10
    assert all(e.get("message") for e in mismatch + away)
    await socket.disconnect()
    assert await db(Observation.objects.filter(session__attempt=attempt).count)() == 6
    # Single frames are guidance, not evidence: no flag without k of n.
    assert await db(Flag.objects.count)() == 0


async def test_a_frame_does_not_wait_for_channels_thread_sensitive_thread(alice, monkeypatch):
    # Channels closes old connections on its one thread-sensitive thread before every message a consumer handles;
    # these consumers close their own (examsite.websocket.ClosesItsOwnConnections), so no message waits for it.
    hops: list[str] = []

    async def hop() -> None:
        hops.append("close_old_connections")

    monkeypatch.setattr("channels.consumer.aclose_old_connections", hop)
    attempt = await db(sitting)(alice)
    socket, _ = await join(alice, attempt.pk)
    assert names(await show(socket, "alice")) == ["FRAME_ACK", "AUTHORIZED", "ATTENTION_UPDATE"]
    assert "PHONE_DETECTED" in names(await show(socket, "phone"))
    await socket.disconnect()
    assert hops == []
    assert await db(Observation.objects.filter(session__attempt=attempt).count)() == 2


async def test_the_handshake_is_accepted_before_the_user_is_looked_up(alice, monkeypatch):
    # Channels' AuthMiddleware looked every user up on its one thread-sensitive thread before the accept: 200
    # students pressing Start at once while the workers loaded lost up to 55 handshakes to Autobahn's 5 s timeout.
    # examsite.websocket.UserOnFirstUse leaves the lookup to the consumer's first database call, after the accept.
    from channels.auth import get_user

    from proctoring.consumers import ProctorConsumer

    order: list[str] = []
    lookup, accept = get_user.func, ProctorConsumer.accept

    def looked_up(scope):
        order.append("user lookup")
        return lookup(scope)

    async def accepted(self, *args, **kwargs):
        order.append("accept")
        return await accept(self, *args, **kwargs)

    monkeypatch.setattr(get_user, "func", looked_up)
    monkeypatch.setattr(ProctorConsumer, "accept", accepted)
    attempt = await db(sitting)(alice)
    socket, ready = await join(alice, attempt.pk)
    assert ready["event"] == "READY"
    assert order == ["accept", "user lookup"]
    await socket.disconnect()


async def test_the_cooldown_holds_back_a_repeated_event(alice):
    attempt = await db(sitting)(alice)
    socket, _ = await join(alice, attempt.pk)
    first = await show(socket, "phone")
    second = await show(socket, "phone")
    assert "PHONE_DETECTED" in names(first)
    assert "PHONE_DETECTED" not in names(second)
    await socket.disconnect()


async def test_k_of_n_frames_open_a_flag_committed_with_its_snapshot_before_the_event(alice):
    attempt = await db(sitting)(alice, k=2, n=3)
    socket, _ = await join(alice, attempt.pk)
    await show(socket, "nobody")
    events = await show(socket, "nobody")
    [event] = [e for e in events if e["event"] == "FACE_NOT_FOUND"]
    flag = await db(Flag.objects.prefetch_related("snapshots").get)(pk=event["flag_id"])
    assert (flag.kind, flag.status, flag.ended_at) == ("face_not_found", "open", None)
    assert flag.details["k"] == 2 and flag.details["window"] == [1, 1]
    assert flag.model_version == "pack=scripted@1"
    [snapshot] = flag.snapshots.all()
    assert snapshot_path(snapshot=snapshot).read_bytes() == frame("nobody")
    assert (snapshot.width, snapshot.height) == (64, 48)

    for _ in range(3):
        await show(socket, "alice")
    await socket.disconnect()
    flag = await db(Flag.objects.get)(pk=flag.pk)
    assert flag.ended_at is not None and flag.ended_seq == 5


async def test_a_reconnect_resumes_the_same_session_and_its_rules_state(alice):
    attempt = await db(sitting)(alice, k=3, n=5)
    socket, ready = await join(alice, attempt.pk)
    await show(socket, "phone")
    await show(socket, "phone")
    await socket.disconnect()

    socket, again = await join(alice, attempt.pk)
    assert again["session_id"] == ready["session_id"] and again["resumed"] is True
    events = await show(socket, "phone")
    [event] = [e for e in events if e["event"] == "PHONE_DETECTED"]
    assert "flag_id" in event
    await socket.disconnect()
    session = await db(ProctoringSession.objects.get)(pk=ready["session_id"])
    assert session.resumed_count == 1 and session.frames_analysed == 3


async def test_a_new_connection_replaces_the_old_one(alice):
    attempt = await db(sitting)(alice)
    old, _ = await join(alice, attempt.pk)
    new, _ = await join(alice, attempt.pk)
    ended = await old.receive_json_from(timeout=5)
    assert ended["event"] == "SESSION_ENDED" and ended["reason"] == "replaced"
    await new.send_json_to({"type": "ping"})
    assert (await new.receive_json_from())["event"] == "PONG"
    await new.disconnect()
    await old.disconnect()


# --- Bad input and load ----------------------------------------------------------------------------------------


async def test_a_corrupt_frame_is_rejected_and_the_connection_kept(alice):
    attempt = await db(sitting)(alice)
    socket, _ = await join(alice, attempt.pk)
    await socket.send_to(bytes_data=b"\xff\xd8\xff\xe0" + b"not really a jpeg" * 10)
    events = await until(socket, ANALYSED)
    assert events[-1]["event"] == "FRAME_REJECTED" and events[-1]["reason"] == "corrupt"
    assert "AUTHORIZED" in names(await show(socket, "alice"))
    await socket.disconnect()
    session = await db(ProctoringSession.objects.get)(attempt=attempt)
    assert session.server_errors == 0 and session.state["windows"]["face_not_found"] == [0]


async def test_a_50_mb_frame_is_rejected_without_reaching_the_pool(alice, inline_pool):
    attempt = await db(sitting)(alice)
    socket, _ = await join(alice, attempt.pk)
    await socket.send_to(bytes_data=b"\xff" * (50 * 1024 * 1024))
    event = await socket.receive_json_from(timeout=5)
    assert event["event"] == "FRAME_REJECTED" and event["reason"] == "too_large"
    assert inline_pool.jobs == []
    await socket.send_json_to({"type": "ping"})
    assert (await socket.receive_json_from())["event"] == "PONG"
    await socket.disconnect()


async def test_a_text_flood_is_ignored_with_an_error_then_closed_with_4429(alice):
    attempt = await db(sitting)(alice)
    socket, _ = await join(alice, attempt.pk)
    for _ in range(400):
        await socket.send_to(text_data='{"type":"ping"}')
    outputs = []
    while True:
        message = await socket.receive_output(timeout=5)
        if message["type"] == "websocket.close":
            break
        outputs.append(json.loads(message["text"])["event"])
    assert message["code"] == 4429
    assert outputs.count("PONG") <= 25
    assert "ERROR" in outputs


async def test_bad_text_messages_get_a_clear_error(alice):
    attempt = await db(sitting)(alice)
    socket, _ = await join(alice, attempt.pk)
    for text in ("not json", "[1, 2]", '{"type": "dance"}', '{"type": "signal", "signal": "sneeze"}', "x" * 5000):
        await socket.send_to(text_data=text)
        event = await socket.receive_json_from()
        assert event["event"] == "ERROR" and event["message"]
    await socket.disconnect()


@pytest.mark.parametrize(
    "text", ["[" * 2000 + "]" * 2000, '{"a":' * 600 + "1" + "}" * 600, '{"a":' * 17 + "1" + "}" * 17]
)
async def test_deeply_nested_json_gets_an_error_and_the_socket_is_kept(alice, text):
    # "[" * 2000 + "]" * 2000 raised RecursionError out of the consumer: closed with 1011, no disconnect recorded.
    attempt = await db(sitting)(alice)
    socket, _ = await join(alice, attempt.pk)
    await socket.send_to(text_data=text)
    event = await socket.receive_json_from(timeout=5)
    assert event["event"] == "ERROR" and "16 deep" in event["message"]
    assert "ATTENTION_UPDATE" in names(await show(socket, "alice"))  # the socket is kept, and still answers
    await socket.disconnect()


async def test_an_unexpected_error_in_a_handler_records_the_disconnect_and_stops_the_watchdog(alice, monkeypatch):
    from proctoring.consumers import ProctorConsumer

    attempt = await db(sitting)(alice, frame_interval_ms=100, stall_after=2)
    socket, _ = await join(alice, attempt.pk)

    async def boom(self, text):
        raise RuntimeError("a bug in a handler")

    monkeypatch.setattr(ProctorConsumer, "_on_text", boom)
    await socket.send_to(text_data='{"type": "ping"}')
    with pytest.raises(RuntimeError):
        await socket.receive_output(timeout=5)
    await asyncio.sleep(1.0)  # the stall would have fallen due after 0.2 s with no frames
    kinds = await db(lambda: list(StreamEvent.objects.values_list("kind", flat=True).order_by("id")))()
    assert "stalled" not in kinds
    assert kinds[-1] == "disconnected"


async def test_the_stall_watchdog_survives_a_database_failure_and_reports_later(alice, monkeypatch):
    from proctoring import consumers

    attempt = await db(sitting)(alice, frame_interval_ms=100, stall_after=2)
    real = consumers.session_note_stream
    failures = []

    def outage_once(**kwargs):
        if not failures:
            failures.append(kwargs)
            raise OperationalError("the database went away")
        return real(**kwargs)

    monkeypatch.setattr(consumers, "session_note_stream", outage_once)
    socket, _ = await join(alice, attempt.pk)
    event = await socket.receive_json_from(timeout=5)
    assert event["event"] == "STREAM_STALLED" and failures
    kinds = await db(lambda: list(StreamEvent.objects.values_list("kind", flat=True).order_by("id")))()
    assert kinds.count("stalled") == 1
    await socket.disconnect()


async def test_fuzzed_frames_and_json_each_get_an_answer_and_the_socket_stays_open(alice):
    # Seeded (FUZZ_SEED): 300 fuzzed frames from tests/proctoring/test_fuzz.py, and hostile text between them.
    import random

    from tests.proctoring.test_fuzz import SEED, generate

    worker_init(analyzer_path="tests.proctoring.fakes:steady_analyzer")  # a garbled frame never reads as "crash"
    rng = random.Random(SEED)
    texts = ["[" * 2000 + "]" * 2000, '{"a":' * 600 + "1" + "}" * 600, "x" * 5000, '{"type": "signal"}', "\u0000"]
    attempt = await db(sitting)(alice)
    socket, _ = await join(alice, attempt.pk)
    for i, (kind, data) in enumerate(generate(rng, 300)):
        if i % 10 == 0:
            await socket.send_to(text_data=rng.choice(texts))
            assert (await socket.receive_json_from(timeout=5))["event"] == "ERROR"
        await socket.send_to(bytes_data=data or b"\0")  # the test communicator cannot send an empty message
        events = await until(socket, ANALYSED | {"FRAME_REJECTED"})
        assert events[-1]["event"] in ("ATTENTION_UPDATE", "FRAME_REJECTED"), (SEED, i, kind, events)
        await asyncio.sleep(0.1)  # within the text-message budget (5 a second)
    assert "ATTENTION_UPDATE" in names(await show(socket, "alice"))
    await socket.disconnect()
    session = await db(ProctoringSession.objects.get)()
    assert session.server_errors == 0


async def test_frames_sent_faster_than_acknowledged_are_dropped_not_queued(alice, inline_pool):
    attempt = await db(sitting)(alice)
    socket, _ = await join(alice, attempt.pk)
    await socket.send_to(bytes_data=frame("slow"))
    for _ in range(4):
        await socket.send_to(bytes_data=frame("alice"))
    acks = [await socket.receive_json_from() for _ in range(5)]
    assert [a["seq"] for a in acks] == [1, 2, 3, 4, 5]
    await until(socket, {"ATTENTION_UPDATE"})  # the slow frame
    await until(socket, {"ATTENTION_UPDATE"})  # the latest waiting frame
    assert await socket.receive_nothing(timeout=0.5)
    await socket.disconnect()
    assert [job.seq for job in inline_pool.jobs] == [1, 5]
    session = await db(ProctoringSession.objects.get)(attempt=attempt)
    assert session.frames_dropped == 3
    seqs = await db(lambda: list(Observation.objects.filter(session=session).values_list("seq", flat=True)))()
    assert seqs == [1, 5]


async def test_a_server_error_is_reported_and_never_counted_against_alice(alice):
    attempt = await db(sitting)(alice, k=1, n=1)
    socket, _ = await join(alice, attempt.pk)
    events = await show(socket, "crash")
    assert events[-1]["event"] == "ERROR"
    await socket.disconnect()
    session = await db(ProctoringSession.objects.get)(attempt=attempt)
    assert session.server_errors == 1 and session.state["windows"] == {}
    assert await db(Flag.objects.count)() == 0
    assert await db(StreamEvent.objects.filter(kind="server_error").count)() == 1


async def test_a_shed_frame_is_reported_as_overloaded_and_not_counted(alice, inline_pool, monkeypatch):
    attempt = await db(sitting)(alice, k=1, n=1)

    async def shed(job, reply_channel):
        return AnalysisResult(job_id=job.job_id, status="expired", reason="stale")

    monkeypatch.setattr(inline_pool, "_submit", shed)
    socket, _ = await join(alice, attempt.pk)
    events = await show(socket, "nobody")
    assert events[-1]["event"] == "OVERLOADED" and "Nothing is counted against you" in events[-1]["message"]
    await socket.disconnect()
    session = await db(ProctoringSession.objects.get)(attempt=attempt)
    assert session.state["windows"] == {} and await db(Flag.objects.count)() == 0
    assert await db(StreamEvent.objects.filter(kind="overloaded").count)() == 1
    # A shed frame is capacity, not a failure: it has its own counter.
    assert session.frames_shed == 1 and session.server_errors == 0


async def test_a_stalled_stream_is_reported_once_and_never_flagged(alice):
    attempt = await db(sitting)(alice, frame_interval_ms=100, stall_after=2)
    socket, _ = await join(alice, attempt.pk)
    event = await socket.receive_json_from(timeout=2)
    assert event["event"] == "STREAM_STALLED" and "not counted" in event["message"]
    assert await socket.receive_nothing(timeout=0.5)
    await show(socket, "alice")
    await socket.disconnect()
    kinds = await db(lambda: list(StreamEvent.objects.values_list("kind", flat=True).order_by("id")))()
    assert kinds[:3] == ["connected", "stalled", "recovered"]
    assert await db(Flag.objects.count)() == 0


# --- Signals, monitor, end -------------------------------------------------------------------------------------


async def test_browser_signals_are_recorded_as_marks(alice):
    attempt = await db(sitting)(alice)
    socket, _ = await join(alice, attempt.pk)
    await socket.send_json_to({"type": "signal", "signal": "tab_hidden"})
    await socket.send_json_to({"type": "ping"})
    assert (await socket.receive_json_from())["event"] == "PONG"
    await socket.disconnect()
    assert await db(lambda: list(BrowserSignal.objects.values_list("kind", flat=True)))() == ["tab_hidden"]


async def test_the_live_monitor_gets_compact_status_with_a_small_thumbnail(alice):
    attempt = await db(sitting)(alice)
    layer = get_channel_layer()
    watcher = await layer.new_channel()
    await layer.group_add(monitor_group(attempt.exam_id), watcher)
    socket, _ = await join(alice, attempt.pk)
    connected = await layer.receive(watcher)
    assert connected["connection"] == "connected" and connected["student"] == "Alice Example"
    await show(socket, "phone")
    status = await layer.receive(watcher)
    assert status["attention"] == {"score": 30, "label": "Away"}
    assert [a["event"] for a in status["alerts"]] == ["PHONE_DETECTED"]
    assert status["conditions"] == ["AUTHORIZED", "PHONE_DETECTED"]
    assert 0 < len(status["thumbnail"]) < 20_000 * 4 / 3 + 4
    await socket.disconnect()


async def test_every_alert_of_a_frame_reaches_the_monitor_with_that_frames_picture_and_the_open_flags(alice):
    import base64

    import cv2
    import numpy as np

    from tests.proctoring.fakes import COLOURS

    attempt = await db(sitting)(alice, k=2, n=3)
    layer = get_channel_layer()
    watcher = await layer.new_channel()
    await layer.group_add(monitor_group(attempt.exam_id), watcher)
    socket, _ = await join(alice, attempt.pk)
    await layer.receive(watcher)  # connected
    await show(socket, "alice")  # the first frame's thumbnail (alice) is taken now; the next is due in 10 s
    await layer.receive(watcher)
    statuses = []
    for _ in range(2):
        await show(socket, "phone_away")
        statuses.append(await layer.receive(watcher))
    first, second = statuses
    assert first["conditions"] == ["AUTHORIZED", "PHONE_DETECTED", "LOOKING_AWAY"]
    assert [a["event"] for a in first["alerts"]] == ["PHONE_DETECTED", "LOOKING_AWAY"]
    # The picture beside the alerts is the frame that raised them (olive), not alice's earlier one (white).
    thumb = cv2.imdecode(np.frombuffer(base64.b64decode(first["thumbnail"]), np.uint8), cv2.IMREAD_COLOR)
    assert np.abs(thumb.reshape(-1, 3).mean(axis=0) - COLOURS["phone_away"]).max() < 10
    # The second frame opens both flags (2 of 3): each alert carries its flag, and the open flags come along.
    flags = {a["event"]: a["flag_id"] for a in second["alerts"]}
    assert set(flags) == {"PHONE_DETECTED", "LOOKING_AWAY"} and all(flags.values())
    assert {(f["event"], f["flag_id"]) for f in second["open_flags"]} == set(flags.items())
    await socket.disconnect()


async def test_an_instructor_message_reaches_alice(alice):
    attempt = await db(sitting)(alice)
    socket, _ = await join(alice, attempt.pk)
    event = {"event": "INSTRUCTOR_MESSAGE", "message": "Five minutes left.", "message_id": 7, "at": 1700000000.0}
    await get_channel_layer().group_send(
        attempt_group(attempt.pk), {"type": "proctor.instructor_message", "event": event}
    )
    assert await socket.receive_json_from() == event
    await socket.disconnect()


async def test_a_reconnect_shows_the_instructors_messages_again_oldest_first(alice):
    from proctoring.models import InstructorMessage

    attempt = await db(sitting)(alice)
    charlie = await db(lambda: attempt.exam.owner)()
    first = await db(InstructorMessage.objects.create)(attempt=attempt, sender=charlie, text="Five minutes left.")
    second = await db(InstructorMessage.objects.create)(attempt=attempt, sender=charlie, text="Please face the camera.")
    socket, _ = await join(alice, attempt.pk)  # READY, then the messages so far
    replayed = [await socket.receive_json_from(), await socket.receive_json_from()]
    assert [(e["event"], e["message"], e["message_id"], e["replayed"]) for e in replayed] == [
        ("INSTRUCTOR_MESSAGE", "Five minutes left.", first.pk, True),
        ("INSTRUCTOR_MESSAGE", "Please face the camera.", second.pk, True),
    ]
    assert replayed[0]["at"] == first.sent_at.timestamp()
    await socket.disconnect()


async def test_ending_from_the_client_ends_the_session_and_closes_open_flags(alice):
    attempt = await db(sitting)(alice, k=1, n=1)
    socket, _ = await join(alice, attempt.pk)
    await show(socket, "nobody")
    await socket.send_json_to({"type": "end"})
    ended = await socket.receive_json_from()
    assert ended["event"] == "SESSION_ENDED" and ended["reason"] == "client_end"
    assert (await socket.receive_output())["type"] == "websocket.close"
    session = await db(ProctoringSession.objects.get)(attempt=attempt)
    assert session.status == "ended"
    assert await db(Flag.objects.filter(ended_at__isnull=True).count)() == 0


async def test_closing_the_page_after_submitting_ends_the_session(alice):
    attempt = await db(sitting)(alice)
    socket, _ = await join(alice, attempt.pk)
    await show(socket, "alice")
    await db(Attempt.objects.filter(pk=attempt.pk).update)(status=Attempt.Status.SUBMITTED)
    await socket.disconnect()
    session = await db(ProctoringSession.objects.get)(attempt=attempt)
    assert (session.status, session.end_reason) == ("ended", "attempt_closed")


async def test_a_dropped_connection_leaves_the_session_open_to_resume(alice):
    attempt = await db(sitting)(alice)
    socket, _ = await join(alice, attempt.pk)
    await socket.disconnect(code=1006)
    session = await db(ProctoringSession.objects.get)(attempt=attempt)
    assert session.status == "active"
    assert await db(StreamEvent.objects.filter(kind="disconnected").count)() == 1


async def test_a_submitted_attempt_ends_the_session_on_the_next_frame(alice):
    attempt = await db(sitting)(alice)
    socket, _ = await join(alice, attempt.pk)
    await db(Attempt.objects.filter(pk=attempt.pk).update)(status=Attempt.Status.SUBMITTED)
    await socket.send_to(bytes_data=frame("alice"))
    events = await until(socket, {"SESSION_ENDED"})
    assert events[-1] == {
        "event": "SESSION_ENDED",
        "reason": "attempt_closed",
        "message": "Your attempt has ended, so proctoring has stopped.",
    }
