"""The proctoring WebSocket: an interface, not a brain (docs/protocol.md is the contract).

It authorises at connect, validates the envelope, enforces size and rate limits, hands frames to the worker pool,
and relays events. Decoding, models, policy and persistence live in proctoring.pool, proctoring.rules and
proctoring.services.

Latest-frame-wins, per connection: at most one frame in flight; a frame that arrives meanwhile waits in a single
slot, and a newer one replaces it (the replaced one is counted as dropped). Nothing queues, so a slow server sheds
frames, never sessions, and results never lag behind by more than one frame.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict

from channels.db import DatabaseSyncToAsync
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db import DatabaseError

from examsite.websocket import LAYER_ERRORS, TRY_AGAIN_LATER, ClosesItsOwnConnections, SurvivesLayerOutage
from proctoring import rules
from proctoring.models import BrowserSignal, StreamEvent
from proctoring.pool import FrameJob, get_pool
from proctoring.pool.base import OK, ObjectsMemory, objects_memory_after, thumbnail_from_bytes
from proctoring.services.sessions import (
    SessionRefused,
    SessionStart,
    attempt_group,
    session_disconnect,
    session_end,
    session_note_stream,
    session_open,
    session_record_result,
    session_record_signal,
)

log = logging.getLogger(__name__)

MAX_TEXT_BYTES = 4096
# Text messages: a bucket of 20, refilled at 5 per second. Beyond it messages are ignored with an ERROR (at most
# one a second); after 200 ignored messages the connection is closed with 4429.
TEXT_BURST = 20
TEXT_RATE = 5.0
TEXT_IGNORED_LIMIT = 200
THUMBNAIL_EVERY_S = 10.0
PACE_MESSAGES = {
    "busy": "Many students are being checked right now, so checks run a little less often. Nothing is wrong on "
    "your side, and nothing is counted against you.",
    "normal": "Checks are back to their usual pace.",
}


MAX_JSON_DEPTH = 16
SIGNAL_RETRY_DELAYS_S = (0.5, 1.0, 2.0, 3.5)
LAYER_RETRY_DELAYS_S = (0.1, 0.5)


def parse_message(text: str) -> dict[str, Any] | None:
    """A client's text message as a JSON object, or None when it is not one: not JSON, not an object, or nested
    deeper than MAX_JSON_DEPTH. ``"[" * 2000 + "]" * 2000`` used to raise RecursionError out of the consumer, which
    closed the socket with 1011 (both sockets share this)."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(message, dict):
        return None
    stack: list[tuple[Any, int]] = [(message, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return None
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return message


def db_call(func: Any) -> DatabaseSyncToAsync:
    """A socket's database work, on the event loop's thread pool instead of Channels' one
    thread-sensitive thread: every socket's frames used to queue behind that single thread, which was the busiest
    thread in the server at 120 students (issue 8). Each call owns its transaction and touches one session, whose
    row lock serialises the writers of that session; other sessions proceed in parallel."""
    return DatabaseSyncToAsync(func, thread_sensitive=False)


class ReadyEvent(TypedDict):
    event: str
    session_id: int
    resumed: bool
    frame_interval_ms: int
    max_frame_bytes: int
    reason: str
    start_within_ms: int
    message: NotRequired[str]


class MonitorStatus(TypedDict, total=False):
    type: str
    attempt_id: int
    session_id: int
    student: str
    student_id: int
    connection: str  # connected | stalled | disconnected | submitted | ended
    attention: dict[str, Any] | None
    alerts: list[dict[str, Any]] | None  # every alert of the frame, most important first
    conditions: list[str]  # what the frame shows (the rules' signals); empty when all is well
    open_flags: list[dict[str, Any]] | None  # the session's open flags, when one opened or closed
    signal: str | None
    thumbnail: str | None  # base64 JPEG, under 20 KB, at most every ~10 s
    at: float


# The monitor hears of a frame when what its tile shows changes: the conditions, the attention label, or the score by
# at least this many points. Alerts, flag changes and thumbnails always go.
ATTENTION_STEP = 5


@dataclasses.dataclass
class MonitorChanges:
    """What the monitor was last told of one student's frames, so that a frame that changes nothing on the tile is
    not sent at all: a quiet room of 200 costs the monitor its thumbnails and its changes, not 100 statuses a
    second."""

    score: int | None = None
    label: str | None = None
    conditions: tuple[str, ...] | None = None

    def worth_sending(
        self,
        *,
        score: int | None,
        label: str | None,
        conditions: tuple[str, ...],
        alerts: bool = False,
        open_flags: bool = False,
        thumbnail: bool = False,
    ) -> bool:
        moved = (
            label != self.label
            or conditions != self.conditions
            or (score is None) != (self.score is None)
            or (score is not None and self.score is not None and abs(score - self.score) >= ATTENTION_STEP)
        )
        if not (moved or alerts or open_flags or thumbnail):
            return False
        self.score, self.label, self.conditions = score, label, conditions
        return True


def monitor_group(exam_id: int) -> str:
    """The instructor live monitor's group for an exam (issue 5 listens to it)."""
    return f"exam_{exam_id}_monitor"


def monitor_status(
    *, attempt_id: int, student: str, student_id: int, connection: str, session_id: int | None = None
) -> MonitorStatus:
    """A status for the exam's monitor group, before its optional fields (docs/protocol.md, Live monitor)."""
    status: MonitorStatus = {
        "type": "monitor.status",
        "attempt_id": attempt_id,
        "student": student,
        "student_id": student_id,
        "connection": connection,
        "at": time.time(),
    }
    if session_id is not None:
        status["session_id"] = session_id
    return status


class ProctorConsumer(ClosesItsOwnConnections, SurvivesLayerOutage, AsyncWebsocketConsumer):
    start: SessionStart | None = None
    disconnected = False
    watchdog: asyncio.Task[None] | None = None
    inflight: asyncio.Task[None] | None = None

    @property
    def opened(self) -> SessionStart:
        """The session this socket carries: set by connect() before any frame or message is handled."""
        if self.start is None:
            raise RuntimeError("the proctoring socket has no session yet")
        return self.start

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Every exit path ends the socket's own tasks and records the disconnect: an unexpected error in a
        handler (the server then closes with 1011) used to leave the stall watchdog running, which later wrote a
        false "stalled" mark, and no disconnect was recorded."""
        try:
            await super().__call__(scope, receive, send)
        except Exception:
            log.exception("proctoring: socket for session %s failed", getattr(self.start, "session_id", None))
            if self.start is not None and not self.disconnected:
                try:
                    await self.disconnect(1011)
                except Exception:  # noqa: BLE001 - already failing; the error above is the one to read
                    log.warning("proctoring: could not record the disconnect", exc_info=True)
            raise
        finally:
            for task in (self.watchdog, self.inflight):
                if task is not None and not task.done():
                    task.cancel()

    async def connect(self) -> None:
        self.start = None
        self.closing = False
        attempt_id = int(self.scope["url_route"]["kwargs"]["attempt_id"])
        # Accept first, then open the session. The handshake never waits for the database: at the start of an exam
        # 200 students press Start in the same second, and handshakes that waited behind the session-open queries
        # hit daphne's handshake timeout while their sessions were still being created. A refusal is a close with
        # its code after the accept: a close before it reaches the browser as a bare handshake failure (1006), and
        # the client could not tell "sign in again" from "re-enrol".
        await self.accept()
        try:
            # The channel layer first, before anything is recorded: a refused connect must leave no "resumed" mark
            # (marks count toward the reconnect limit). Discarding our own channel from the group is harmless
            # before authorisation, and is a round trip to Redis that replaces a connection gone stale.
            await self._layer("group_discard", attempt_group(attempt_id), self.channel_name)
        except LAYER_ERRORS:
            log.warning("proctoring: the channel layer is unavailable; connect to attempt %s refused with %s",
                        attempt_id, TRY_AGAIN_LATER, exc_info=True)  # fmt: skip
            await self.close(code=TRY_AGAIN_LATER)
            return
        try:
            start = await db_call(session_open)(attempt_id=attempt_id, user=self.scope.get("user"))
        except SessionRefused as exc:
            await self.close(code=exc.code)
            return
        except DatabaseError:
            log.warning("proctoring: the database is unavailable; connect to attempt %s refused with %s",
                        attempt_id, TRY_AGAIN_LATER, exc_info=True)  # fmt: skip
            await self.close(code=TRY_AGAIN_LATER)
            return
        self.start = start
        self.settings: rules.RuleSettings = start.settings
        self.pool = get_pool()
        self.pool.warm()
        self.pool.join(self.channel_name, interval_ms=start.settings.frame_interval_ms)
        # A student who joins a paced room starts at the room's pace (READY carries it), not at the exam's own.
        self.pace_ms = self.pool.pace_interval_ms(start.settings.frame_interval_ms, joining=True)
        self.interval_s = self.pace_ms / 1000.0
        # The session's last measured object-detector result (the skip rule in proctoring.pool.base.analyze_job),
        # and when it last got a result, or connected (the pool serves the longest-waiting session first). A
        # session that has had no result yet waits from its connect, not from the epoch: at a room's connect burst
        # the late joiners' first frames must not overtake the early joiners' next ones.
        self.objects_memory: ObjectsMemory | None = None
        self.last_result_at = time.time()
        self.identity_due = start.identity_due
        self.seq = start.last_seq
        self.inflight = None
        self.waiting: tuple[int, bytes, float] | None = None
        self.dropped = 0
        self.last_frame_at = time.time()
        self.stalled = False
        self.last_thumbnail_at = 0.0
        self.told_monitor = MonitorChanges()
        self.tokens = float(TEXT_BURST)
        self.tokens_at = time.monotonic()
        self.ignored = 0
        self.last_flood_error = 0.0

        # A newer connection of the same attempt replaces older ones (a reload, or a network drop the old socket
        # has not noticed yet): tell them before joining, so this one is not told about itself.
        await self._layer(
            "group_send", attempt_group(start.attempt_id), {"type": "proctor.replaced", "channel": self.channel_name}
        )
        await self._layer("group_add", attempt_group(start.attempt_id), self.channel_name)
        ready: ReadyEvent = {
            "event": "READY",
            "session_id": start.session_id,
            "resumed": start.resumed,
            "frame_interval_ms": self.pace_ms,
            "max_frame_bytes": start.settings.max_frame_bytes,
            "reason": "normal",
            # The first frame at a random point of the first interval, as every client does after PACE, not at
            # once: a room that presses Start in the same two seconds otherwise sends its first frames as one wave
            # (300 students: 190 frames in the first 1.3 s, before the pool had measured anything to pace on), and
            # the wave comes back every interval: after the first 20 s, p95 1.8-2.3 s with the wave and 0.05-0.25 s
            # without it (bench/results/capacity.json, session23_ab_*).
            "start_within_ms": self.pace_ms,
        }
        if self.pace_ms > start.settings.frame_interval_ms:
            ready["reason"], ready["message"] = "busy", PACE_MESSAGES["busy"]
        await self.send_json(ready)
        for message in start.messages:
            await self.send_json(message)
        self.watchdog = asyncio.create_task(self._watch_stalls())
        await self._monitor(connection="connected")

    async def _layer(self, method: str, *args: Any) -> None:
        """A channel-layer call, retried on a broken connection: after a Redis restart the first command on each
        pooled connection fails, and the retry gets a fresh one."""
        for delay in (*LAYER_RETRY_DELAYS_S, None):
            try:
                await getattr(self.channel_layer, method)(*args)
                return
            except LAYER_ERRORS:
                if delay is None:
                    raise
                await asyncio.sleep(delay)

    async def disconnect(self, code: int) -> None:
        if self.start is None or self.disconnected:
            return
        self.disconnected = True
        self.closing = True
        self.pool.leave(self.channel_name)
        if self.watchdog is not None:
            self.watchdog.cancel()
        await self.channel_layer.group_discard(attempt_group(self.start.attempt_id), self.channel_name)
        if self.inflight is not None:
            # Let the frame in flight be recorded (nothing stored is lost), bounded by the pool's timeout.
            await asyncio.wait({self.inflight}, timeout=self.pool.timeout_s + 2)
        ended = await db_call(session_disconnect)(session_id=self.start.session_id, code=code)
        await self._monitor(connection=ended or "disconnected")

    # --- Client -> server ------------------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.start is None or self.closing:
            return
        if bytes_data is not None:
            await self._on_frame(bytes_data)
        elif text_data is not None:
            await self._on_text(text_data)

    async def _on_frame(self, data: bytes) -> None:
        now = time.time()
        self.last_frame_at = now
        if self.stalled:
            self.stalled = False
            await db_call(session_note_stream)(session_id=self.opened.session_id, kind=StreamEvent.Kind.RECOVERED)
            self.told_monitor = MonitorChanges()  # the tile says "stream paused": the next result must reach it
        if len(data) > self.settings.max_frame_bytes:
            # Answered without touching the pool or the database: an oversize flood costs us nothing.
            await self.send_json(
                {"event": "FRAME_REJECTED", "reason": "too_large", "message": rules.MESSAGES["FRAME_REJECTED"]}
            )
            return
        self.seq += 1
        await self.send_json({"event": "FRAME_ACK", "seq": self.seq})
        if self.inflight is not None:
            if self.waiting is not None:
                self.dropped += 1
            self.waiting = (self.seq, data, now)
            return
        self._dispatch(self.seq, data, now)

    def _dispatch(self, seq: int, data: bytes, received_at: float) -> None:
        self.inflight = asyncio.create_task(self._process(seq, data, received_at))

    async def _process(self, seq: int, data: bytes, received_at: float) -> None:
        start = self.opened
        try:
            with_identity = self.identity_due
            now = time.time()
            want_thumbnail = now - self.last_thumbnail_at >= THUMBNAIL_EVERY_S
            if want_thumbnail:
                self.last_thumbnail_at = now
            job = FrameJob(
                job_id=uuid.uuid4().hex,
                session_id=start.session_id,
                seq=seq,
                frame=data,
                # The enrolment always travels (its neutral pose makes pose and gaze relative, in the worker); its
                # embedding is compared only when identity is due (the session's cadence).
                enrolled=start.enrolled,
                identity=with_identity,
                objects=self.settings.objects,
                max_bytes=self.settings.max_frame_bytes,
                # Older than one interval when a worker picks it up: a newer frame is coming, skip this one.
                deadline=now + max(self.interval_s, 1.0),
                want_thumbnail=want_thumbnail,
                priority=self.last_result_at,
                objects_memory=self.objects_memory,
            )
            reply = self.channel_name if self.pool.needs_reply_channel else None
            result = await self.pool.analyze(job, reply_channel=reply)
            dropped, self.dropped = self.dropped, 0
            if result.status == OK:
                self.last_result_at = time.time()
                self.objects_memory = objects_memory_after(
                    self.objects_memory,
                    seq=seq,
                    result=result,
                    limit=self.settings.object_reuse_frames,
                    phase=start.session_id,
                )
            outcome = await db_call(session_record_result)(
                session_id=start.session_id,
                seq=seq,
                received_at=received_at,
                result=result,
                frame=data,
                latency_ms=round((time.time() - received_at) * 1000, 1),
                dropped=dropped,
            )
            self.identity_due = outcome.identity_due
            if not self.closing:
                for event in outcome.events:
                    # Which frame this answers (its FRAME_ACK seq): a client can measure latency and see drops.
                    await self.send_json({**event, "seq": seq} if event["event"] != "SESSION_ENDED" else event)
            if (outcome.attention is not None or outcome.alerts) and self.told_monitor.worth_sending(
                score=outcome.attention,
                label=outcome.label,
                conditions=tuple(outcome.conditions),
                alerts=bool(outcome.alerts),
                open_flags=outcome.open_flags is not None,
                thumbnail=result.thumbnail_b64 is not None,
            ):
                thumbnail = result.thumbnail_b64
                if outcome.alerts and thumbnail is None:
                    # The tile shows the frame that raised the alert, never an older one beside it (an identity
                    # alert beside the enrolled student's face). Alerts are rare (cooldowns), so the server makes
                    # this one, off the event loop.
                    thumbnail = await asyncio.get_running_loop().run_in_executor(None, thumbnail_from_bytes, data)
                    self.last_thumbnail_at = time.time()
                await self._monitor(
                    connection="connected",
                    attention={"score": outcome.attention, "label": outcome.label}
                    if outcome.attention is not None
                    else None,
                    alerts=outcome.alerts or None,
                    conditions=list(outcome.conditions),
                    open_flags=outcome.open_flags,
                    thumbnail=thumbnail,
                )
            if outcome.ended:
                await self._ended(outcome.ended)
            else:
                await self._pace()
        except asyncio.CancelledError:
            raise
        except Exception:
            # A bug or a database outage is the server's problem: say so, count nothing against the student.
            log.exception("proctoring: frame %s of session %s failed", seq, start.session_id)
            if not self.closing:
                await self.send_json({"event": "ERROR", "message": rules.MESSAGES["ERROR"], "seq": seq})
        finally:
            self.inflight = None
            if self.waiting is not None and not self.closing:
                waiting, self.waiting = self.waiting, None
                self._dispatch(*waiting)

    async def _pace(self) -> None:
        """Push back: tell the client the frame interval the server can keep up with now (PACE), and restore the
        exam's own when load falls. The stall watchdog and frame deadlines follow the paced interval."""
        paced = self.pool.pace_interval_ms(self.settings.frame_interval_ms)
        if paced == self.pace_ms or self.closing:
            return
        self.pace_ms = paced
        self.interval_s = paced / 1000.0
        busy = paced > self.settings.frame_interval_ms
        await self.send_json(
            {
                "event": "PACE",
                "frame_interval_ms": paced,
                "reason": "busy" if busy else "normal",
                "message": PACE_MESSAGES["busy" if busy else "normal"],
            }
        )

    async def _on_text(self, text: str) -> None:
        if not self._take_token():
            self.ignored += 1
            if self.ignored >= TEXT_IGNORED_LIMIT:
                await self._close(4429)
                return
            if time.monotonic() - self.last_flood_error >= 1.0:
                self.last_flood_error = time.monotonic()
                await self.send_json({"event": "ERROR", "message": "Too many messages; some were ignored."})
            return
        if len(text) > MAX_TEXT_BYTES:
            await self._error("That message is too long.")
            return
        message = parse_message(text)
        if message is None:
            await self._error("Messages must be JSON objects, nested at most 16 deep.")
            return
        kind = message.get("type")
        if kind == "ping":
            await self.send_json({"event": "PONG"})
        elif kind == "signal":
            signal = message.get("signal")
            if signal not in BrowserSignal.Kind.values:
                await self._error(f"Unknown signal; expected one of: {', '.join(BrowserSignal.Kind.values)}.")
                return
            if not await self._record_signal(signal):
                await self._error("Your browser's note could not be saved just now. Nothing is counted against you.")
                return
            await self._monitor(connection="connected", signal=signal)
        elif kind == "end":
            await db_call(session_end)(session_id=self.opened.session_id, reason="client_end")
            await self._ended("client_end")
        else:
            await self._error("Unknown message type; expected signal, ping or end.")

    async def _record_signal(self, signal: str) -> bool:
        """Record a browser signal, holding it through a short database outage (retries over about 7 s): a
        `tab_hidden` that arrives while the database restarts used to close the socket with 1011 and be lost."""
        for delay in (*SIGNAL_RETRY_DELAYS_S, None):
            try:
                await db_call(session_record_signal)(session_id=self.opened.session_id, kind=signal)
                return True
            except DatabaseError:
                if delay is None or self.closing:
                    log.error("proctoring: signal %s of session %s lost: the database stayed unavailable", signal,
                              self.opened.session_id, exc_info=True)  # fmt: skip
                    return False
                log.warning("proctoring: signal %s of session %s held: the database is unavailable", signal,
                            self.opened.session_id)  # fmt: skip
                await asyncio.sleep(delay)
        return False

    def _take_token(self) -> bool:
        now = time.monotonic()
        self.tokens = min(float(TEXT_BURST), self.tokens + (now - self.tokens_at) * TEXT_RATE)
        self.tokens_at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    # --- Server side -----------------------------------------------------------------------------------------

    async def _watch_stalls(self) -> None:
        """Report a stalled stream once (STREAM_STALLED), recorded as stream health and never as a flag."""
        while True:
            await asyncio.sleep(max(0.05, self.interval_s / 2))
            if self.stalled or self.closing:
                continue
            if rules.stall_due(
                last_frame_at=self.last_frame_at, now=time.time(), settings=self.settings, interval_ms=self.pace_ms
            ):
                self.stalled = True
                try:
                    await db_call(session_note_stream)(
                        session_id=self.opened.session_id,
                        kind=StreamEvent.Kind.STALLED,
                        details={"since": self.last_frame_at},
                    )
                except Exception:  # noqa: BLE001 - a database outage must not end the watchdog: retry next tick
                    log.warning("proctoring: could not record a stall for session %s", self.opened.session_id,
                                exc_info=True)  # fmt: skip
                    self.stalled = False
                    await asyncio.sleep(1.0)
                    continue
                await self.send_json({"event": "STREAM_STALLED", "message": rules.MESSAGES["STREAM_STALLED"]})
                await self._monitor(connection="stalled")

    async def _monitor(self, *, connection: str, **fields: Any) -> None:
        start = self.opened
        status = monitor_status(
            attempt_id=start.attempt_id,
            student=start.student,
            student_id=start.student_id,
            connection=connection,
            session_id=start.session_id,
        )
        status.update({k: v for k, v in fields.items() if v is not None})  # type: ignore[typeddict-item]
        try:
            await self.channel_layer.group_send(monitor_group(start.exam_id), status)
        except Exception:  # noqa: BLE001 - the live monitor is best effort; the student's stream comes first
            log.warning("proctoring: monitor update for attempt %s failed", start.attempt_id, exc_info=True)

    async def _ended(self, reason: str, *, submitted: bool = False) -> None:
        if self.closing:
            return
        await self.send_json({"event": "SESSION_ENDED", "reason": reason, "message": _ENDED_MESSAGES.get(reason, "")})
        await self._monitor(connection="submitted" if submitted else "ended")
        await self._close(1000)

    async def _close(self, code: int) -> None:
        self.closing = True
        await self.close(code=code)

    async def _error(self, message: str) -> None:
        await self.send_json({"event": "ERROR", "message": message})

    async def send_json(self, content: Mapping[str, Any]) -> None:
        await self.send(text_data=json.dumps(content, separators=(",", ":")))

    # --- Channel layer -> this socket ------------------------------------------------------------------------

    async def proctor_result(self, message: dict[str, Any]) -> None:
        """A Celery worker's result for a frame of this connection."""
        self.pool.deliver(message["job_id"], message["result"])

    async def proctor_replaced(self, message: dict[str, Any]) -> None:
        if self.start is None or message.get("channel") == self.channel_name:
            return
        await self._ended("replaced")

    async def proctor_ended(self, message: dict[str, Any]) -> None:
        """The session ended outside this socket (proctoring.services.sessions.session_end_for_attempt: the attempt
        was submitted or expired, perhaps from another tab or a sweep): tell the student and close."""
        if self.start is None:
            return
        await self._ended(str(message.get("reason") or "attempt_closed"), submitted=bool(message.get("submitted")))

    async def proctor_instructor_message(self, message: dict[str, Any]) -> None:
        """The live monitor sends {"type": "proctor.instructor_message", "event": {...}} to attempt_group(), with
        the stored message's INSTRUCTOR_MESSAGE event (proctoring.services.sessions.instructor_message_event)."""
        if self.start is None or self.closing:
            return
        event = message.get("event") or {}
        await self.send_json(
            {
                "event": "INSTRUCTOR_MESSAGE",
                "message": str(event.get("message", ""))[:1000],
                "message_id": event.get("message_id"),
                "at": event.get("at"),
            }
        )


_ENDED_MESSAGES = {
    "client_end": "Proctoring has ended. Thank you.",
    "attempt_closed": "Your attempt has ended, so proctoring has stopped.",
    "replaced": "You opened the exam in another window; proctoring continues there.",
    "violations": "Your exam's rules ended proctoring. Your instructor will be in touch.",
}
