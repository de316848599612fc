"""The exam panel's side of the WebSocket protocol (CONTRACTS.md), in a real Chromium against a scripted server.

Playwright's WebSocket routing stands in for the proctoring server, so each rule of the protocol is checked exactly
and fast, without models: a frame only after FRAME_ACK and not sooner than frame_interval_ms, integrity signals as
JSON, calm notices in the live regions, the attention meter, reconnect-and-resume, and no reconnect after a final
close code. The real server is covered by test_webcam_exam.py.
"""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from django.conf import settings
from django.utils import timezone

from exams.models import Attempt
from tests.conftest import service_missing
from tests.factories import ExamFactory, StudentFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts" / "e2e"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
INTERVAL_MS = 400


class ScriptedServer:
    """Records what the page sends on each connection; the test decides what the server answers."""

    def __init__(self) -> None:
        self.connections: list = []
        self.received: list[list[tuple[float, object]]] = []
        self.lock = threading.Lock()

    def handler(self, ws) -> None:
        index = len(self.connections)
        self.connections.append(ws)
        self.received.append([])

        def on_message(message) -> None:
            with self.lock:
                self.received[index].append((time.monotonic(), message))

        ws.on_message(on_message)

    def frames(self, index: int = -1) -> list[tuple[float, bytes]]:
        with self.lock:
            return [(t, m) for t, m in self.received[index] if isinstance(m, bytes)]

    def texts(self, index: int = -1) -> list[dict]:
        with self.lock:
            return [json.loads(m) for _, m in self.received[index] if isinstance(m, str)]

    def send(self, payload: dict, index: int = -1) -> None:
        self.connections[index].send(json.dumps(payload))


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        service_missing(f"Chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


def settle(page, condition, timeout_ms: int = 5000) -> None:
    """Poll a Python condition while letting Playwright dispatch the page's WebSocket messages."""
    deadline = time.monotonic() + timeout_ms / 1000
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        page.wait_for_timeout(50)


@pytest.fixture
def alices_attempt(live_server, client) -> tuple[str, dict]:
    """Alice's proctored attempt and her session cookie. Made before Playwright starts: its sync API runs an event
    loop in this thread, and Django refuses ORM calls while one runs."""
    alice = StudentFactory(username="alice")
    exam = ExamFactory(proctoring_enabled=True)
    now = timezone.now()
    attempt = Attempt.objects.create(exam=exam, student=alice, started_at=now, deadline=now + timedelta(hours=1))
    client.force_login(alice)
    host = live_server.url.split("//")[1].split(":")[0]
    cookie = {"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value}
    return f"{live_server.url}/attempts/{attempt.pk}/", {**cookie, "domain": host, "path": "/"}


def open_exam_page(browser, alices_attempt) -> tuple:
    """Alice's exam page at 1280 px, its proctoring socket routed to a ScriptedServer; page errors collected."""
    exam_url, cookie = alices_attempt
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.add_cookies([cookie])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    server = ScriptedServer()
    page.route_web_socket("**/ws/proctor/*/", server.handler)
    page.goto(exam_url)
    return context, page, server, errors


def test_the_panel_streams_after_each_ack_reports_signals_and_resumes_after_a_drop(alices_attempt, browser):
    context, page, server, errors = open_exam_page(browser, alices_attempt)

    # 1. READY starts the stream: one JPEG frame, then nothing more until the server acknowledges it.
    settle(page, lambda: server.connections)
    server.send(
        {
            "event": "READY",
            "session_id": 7,
            "resumed": False,
            "frame_interval_ms": INTERVAL_MS,
            "max_frame_bytes": 10**6,
        }
    )
    page.wait_for_selector('#proctor-connection[data-state="connected"]')
    settle(page, lambda: len(server.frames()) == 1)
    first_at, first = server.frames()[0]
    assert first[:3] == b"\xff\xd8\xff", "frames are JPEG"
    assert cv2.imdecode(np.frombuffer(first, np.uint8), cv2.IMREAD_COLOR).shape == (480, 640, 3)
    page.wait_for_timeout(3 * INTERVAL_MS)
    assert len(server.frames()) == 1, "no frame may be sent before FRAME_ACK"

    # 2. After an ACK the next frame comes, but not sooner than the frame interval after the previous one.
    server.send({"event": "FRAME_ACK", "seq": 1})
    settle(page, lambda: len(server.frames()) == 2)
    server.send({"event": "FRAME_ACK", "seq": 2})
    acked_at = time.monotonic()
    settle(page, lambda: len(server.frames()) == 3)
    second_at, third_at = server.frames()[1][0], server.frames()[2][0]
    assert third_at - second_at >= INTERVAL_MS / 1000 * 0.9, (second_at, third_at)
    assert third_at - acked_at < 2.0

    # 3. Notices: calm text in the alert list and the polite live region; a flag-opening one carries its flag id.
    server.send({"event": "PHONE_DETECTED", "flag_id": 42})
    item = page.wait_for_selector('#proctor-alerts li[data-event="PHONE_DETECTED"][data-flag-id="42"]')
    assert "A phone seems to be in view. Please put it away." in item.inner_text()
    page.wait_for_function("() => document.getElementById('proctor-polite').textContent.includes('phone')")
    server.send({"event": "MULTIPLE_FACES", "count": 2, "message": "We can see more than one face."})
    page.wait_for_selector('#proctor-alerts li[data-event="MULTIPLE_FACES"]')
    assert page.inner_text("#proctor-alerts li:first-child .alert-text") == "We can see more than one face."
    # Alternating conditions merge into their entries (counted, brought to the top) instead of adding two every time.
    for _ in range(2):
        server.send({"event": "PHONE_DETECTED", "flag_id": 42})
        server.send({"event": "MULTIPLE_FACES", "count": 2, "message": "We can see more than one face."})
    page.wait_for_selector('#proctor-alerts li[data-event="MULTIPLE_FACES"][data-count="3"]')
    assert page.locator("#proctor-alerts li").count() == 2
    assert page.get_attribute('#proctor-alerts li[data-event="PHONE_DETECTED"]', "data-count") == "3"
    assert page.inner_text("#proctor-alerts li:first-child .alert-count") == " (×3)"

    # 4. The attention meter shows the score with its label in text, not colour alone.
    server.send({"event": "ATTENTION_UPDATE", "score": 55, "label": "Distracted"})
    page.wait_for_function("() => document.getElementById('proctor-attention').value === 55")
    assert page.inner_text("#proctor-attention-label") == "Distracted (55 of 100)"

    # 5. An instructor's message is shown in its own box and announced assertively (issue 5).
    server.send({"event": "INSTRUCTOR_MESSAGE", "message": "Ten minutes left, please check your answers."})
    page.wait_for_selector("#proctor-instructor:not([hidden])")
    assert page.inner_text("#proctor-instructor-text") == "Ten minutes left, please check your answers."
    page.wait_for_function("() => document.getElementById('proctor-assertive').textContent.includes('Ten minutes')")

    # 6. Browser integrity signals travel as JSON on the same socket.
    page.evaluate("document.dispatchEvent(new Event('paste'))")
    settle(page, lambda: {"type": "signal", "signal": "paste"} in server.texts())
    assert {"type": "signal", "signal": "camera_started"} in server.texts()
    page.screenshot(path=str(ARTIFACTS / "panel-protocol.png"), full_page=True)

    # 6b. "Use full screen" says what it will do: in full screen it reads "Leave full screen", and leaves it.
    button = page.locator("#proctor-fullscreen")
    assert button.inner_text() == "Use full screen"
    button.click()
    page.wait_for_function("() => document.fullscreenElement !== null")
    settle(page, lambda: {"type": "signal", "signal": "fullscreen_enter"} in server.texts())
    assert button.inner_text() == "Leave full screen" and button.is_visible()
    assert button.get_attribute("aria-pressed") == "true"
    button.click()
    page.wait_for_function("() => document.fullscreenElement === null")
    settle(page, lambda: {"type": "signal", "signal": "fullscreen_exit"} in server.texts())
    assert button.inner_text() == "Use full screen"

    # 7. The camera stopping (unplugged, taken by another app) is reported, and the stream stops rather than
    #    resending a frozen picture; the student can turn it back on.
    page.evaluate(
        "document.getElementById('proctor-preview').srcObject.getVideoTracks()[0].dispatchEvent(new Event('ended'))"
    )
    settle(page, lambda: {"type": "signal", "signal": "camera_stopped"} in server.texts())
    page.wait_for_selector("#proctor-camera-retry:not([hidden])")
    assert page.inner_text("#proctor-camera") == "Stopped"
    page.wait_for_function("() => document.getElementById('proctor-assertive').textContent.includes('camera stopped')")
    sent = len(server.frames())
    server.send({"event": "FRAME_ACK", "seq": 3})
    page.wait_for_timeout(3 * INTERVAL_MS)
    assert len(server.frames()) == sent, "no stream from a stopped camera"
    page.click("#proctor-camera-retry")
    page.wait_for_selector('#proctor-camera[data-state="on"]')

    # 8. A dropped connection reconnects by itself and the server resumes the same session.
    server.connections[-1].close(code=1011, reason="server restart")
    page.wait_for_selector('#proctor-connection[data-state="reconnecting"]')
    settle(page, lambda: len(server.connections) == 2, timeout_ms=10_000)
    server.send(
        {"event": "READY", "session_id": 7, "resumed": True, "frame_interval_ms": INTERVAL_MS, "max_frame_bytes": 10**6}
    )
    page.wait_for_function(
        "() => document.getElementById('proctor-connection').textContent.includes('session continues')"
    )
    settle(page, lambda: len(server.frames(1)) == 1)

    # 9. A final close code is explained and not retried; the exam page stays where it is, never ended by the panel.
    server.connections[-1].close(code=4409, reason="attempt not in progress")
    page.wait_for_selector('#proctor-connection[data-state="closed"]')
    assert "no longer in progress" in page.inner_text("#proctor-connection")
    page.wait_for_timeout(2500)
    assert len(server.connections) == 2, "no reconnect after a final close code"
    assert page.url == alices_attempt[0]
    assert not errors, errors


def test_a_reload_keeps_the_notices_and_shows_the_instructors_messages_once(alices_attempt, browser):
    ready = {"event": "READY", "session_id": 7, "resumed": False, "frame_interval_ms": 5000, "max_frame_bytes": 10**6}
    message = {"event": "INSTRUCTOR_MESSAGE", "message": "Ten minutes left.", "message_id": 5, "at": time.time() - 60}
    context, page, server, errors = open_exam_page(browser, alices_attempt)
    settle(page, lambda: server.connections)
    server.send(ready)
    server.send({"event": "PHONE_DETECTED", "flag_id": 42})
    server.send({"event": "PHONE_DETECTED", "flag_id": 42})
    server.send(message)
    page.wait_for_selector('#proctor-alerts li[data-event="INSTRUCTOR_MESSAGE"]')
    page.wait_for_function("() => document.getElementById('proctor-assertive').textContent.includes('Ten minutes')")

    page.reload()
    settle(page, lambda: len(server.connections) == 2)
    # Before the socket says anything, the history is back: the phone notice with its count and flag.
    phone = page.wait_for_selector('#proctor-alerts li[data-event="PHONE_DETECTED"][data-flag-id="42"]')
    assert phone.get_attribute("data-count") == "2"
    server.send({**ready, "resumed": True})
    server.send({**message, "replayed": True})  # the server replays every message after READY
    page.wait_for_selector("#proctor-instructor:not([hidden])")
    assert page.inner_text("#proctor-instructor-text") == "Ten minutes left."
    page.wait_for_timeout(500)
    instructor = page.locator('#proctor-alerts li[data-event="INSTRUCTOR_MESSAGE"]')
    assert instructor.count() == 1 and instructor.get_attribute("data-count") == "1"
    assert "Ten minutes" not in page.inner_text("#proctor-assertive")  # shown again, not read out again
    # A replayed message that this tab never saw (sent while it was closed) is shown, at the time it was sent.
    server.send({"event": "INSTRUCTOR_MESSAGE", "message": "Please face the camera.", "message_id": 6,
                 "at": time.time() - 30, "replayed": True})  # fmt: skip
    page.wait_for_selector('#proctor-alerts li[data-text="Message from your instructor: Please face the camera."]')
    assert page.inner_text("#proctor-instructor-text") == "Please face the camera."
    # One time format: 24-hour, as review and the monitor show times.
    times = page.eval_on_selector_all("#proctor-alerts time", "items => items.map(t => t.textContent)")
    assert times and all(re.fullmatch(r"\d\d:\d\d:\d\d", t) for t in times), times
    assert errors == []
    context.close()


def test_in_a_paced_room_the_first_frame_waits_its_turn_and_the_student_is_told_calmly(alices_attempt, browser):
    context, page, server, errors = open_exam_page(browser, alices_attempt)
    settle(page, lambda: server.connections)
    page.wait_for_selector('#proctor-camera[data-state="on"]')
    page.evaluate("Math.random = () => 0.75")  # where in the window this client lands

    # READY from a busy room: the first frame at 0.75 of start_within_ms (1.2 s), not at once.
    sent_at = time.monotonic()
    busy = "Many students are being checked right now, so checks run a little less often."
    server.send({"event": "READY", "session_id": 7, "resumed": False, "frame_interval_ms": 1000,
                 "max_frame_bytes": 10**6, "reason": "busy", "start_within_ms": 1200, "message": busy})  # fmt: skip
    page.wait_for_function(
        "() => document.getElementById('proctor-connection').textContent.includes('a little slower right now')"
    )
    page.wait_for_selector('#proctor-alerts li[data-event="PACE"]')
    page.wait_for_function("() => document.getElementById('proctor-polite').textContent.includes('less often')")
    settle(page, lambda: len(server.frames()) == 1)
    waited = server.frames()[0][0] - sent_at
    assert 0.8 <= waited < 3.0, waited  # 0.9 s planned; never before 0.8 s

    # Load falls: PACE normal restores the usual status line and interval.
    server.send({"event": "FRAME_ACK", "seq": 1})
    server.send({"event": "PACE", "frame_interval_ms": INTERVAL_MS, "reason": "normal",
                 "message": "Checks are back to their usual pace."})  # fmt: skip
    page.wait_for_function("() => document.getElementById('proctor-connection').textContent.trim() === 'Connected.'")
    settle(page, lambda: len(server.frames()) == 2)
    assert errors == []
    context.close()


def test_pace_re_spreads_the_next_frame_within_one_new_interval_of_the_previous_one(alices_attempt, browser):
    """docs/protocol.md, flow control: on PACE the next frame goes at a random point between now and one new interval
    after the previous frame. The rule before (a random point of a whole new interval from now) fails both checks
    below with Math.random fixed at 0.9: 3.5 s between frames paced to 3 s, and 1.4 s once back to 1 s."""
    context, page, server, errors = open_exam_page(browser, alices_attempt)
    settle(page, lambda: server.connections)
    page.wait_for_selector('#proctor-camera[data-state="on"]')
    page.evaluate("Math.random = () => 0.9")
    server.send({"event": "READY", "session_id": 7, "resumed": False, "frame_interval_ms": 1000,
                 "max_frame_bytes": 10**6, "start_within_ms": 0})  # fmt: skip
    settle(page, lambda: len(server.frames()) == 1)
    first_at = server.frames()[0][0]
    server.send({"event": "FRAME_ACK", "seq": 1})

    def pace(previous_at: float, *, wait_ms: int, interval_ms: int, reason: str) -> None:
        """PACE `wait_ms` after the ACK of the frame sent at `previous_at`; the next frame must go at 0.9 of what is
        left of the new interval after that frame, and so within one new interval of it."""
        page.wait_for_timeout(wait_ms)
        paced_at = time.monotonic()
        left = previous_at + interval_ms / 1000 - paced_at
        sent = len(server.frames())
        server.send({"event": "PACE", "frame_interval_ms": interval_ms, "reason": reason, "message": "Checks."})
        settle(page, lambda: len(server.frames()) == sent + 1)
        next_at = server.frames()[-1][0]
        assert abs((next_at - paced_at) - 0.9 * left) < 0.3, (next_at - paced_at, left)
        assert next_at - previous_at <= interval_ms / 1000 + 0.15

    # Paced to 3 s 0.8 s after the first frame: the next one at 0.9 of the 2.2 s left of the new interval.
    pace(first_at, wait_ms=700, interval_ms=3000, reason="busy")
    # Back to 1 s 0.5 s after the second frame: at 0.9 of the half second left, not 0.9 s from now.
    server.send({"event": "FRAME_ACK", "seq": 2})
    pace(server.frames()[1][0], wait_ms=400, interval_ms=1000, reason="normal")
    assert errors == []
    context.close()
