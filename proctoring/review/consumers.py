"""The instructor's live monitor WebSocket at /ws/monitor/<exam_id>/.

Only the exam's instructor (or an admin) may connect. The socket joins the exam's monitor group, where every
student's proctoring consumer posts a compact status (proctoring.consumers.MonitorStatus), and relays those to the
page, with the thumbnails only of the tiles on the instructor's screen (the page says which, with `visible`). The
instructor can send one student a message: it is recorded first (InstructorMessage), then delivered to
the student's sockets through the attempt's group, where the proctoring consumer turns it into INSTRUCTOR_MESSAGE.

Refusals close with 4401 (not signed in) or 4403 (not your exam, or no such exam: ids reveal nothing).
"""

from __future__ import annotations

import time
from typing import Any, TypedDict

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from exams.models import Exam
from examsite.websocket import ClosesItsOwnConnections, SurvivesLayerOutage
from proctoring.consumers import monitor_group, parse_message
from proctoring.decisions import ReviewError
from proctoring.review.selectors import exam_for_review, exam_roster
from proctoring.services.sessions import attempt_group, instructor_message_create, instructor_message_event

# An instructor typing can't send more than this many messages per minute: a stuck key must not flood a student.
MESSAGES_PER_MINUTE = 20
MAX_TEXT_BYTES = 16384  # room for a visible list; a message is capped at 500 characters by the page
# A page says which students' tiles are on screen; more ids than a roster could hold is a mistake or abuse.
MAX_VISIBLE = 1000


class SnapshotEvent(TypedDict):
    event: str  # "SNAPSHOT"
    exam_id: int
    tiles: list[dict[str, Any]]


def _reviewer_and_exam(exam_id: int, user: Any) -> tuple[bool, Exam | None]:
    """(signed in, the exam when this user may review it: the review pages' own rule, review.selectors.
    exam_for_review). In a sync call: the handshake leaves the user to be looked up here (UserOnFirstUse)."""
    if user is None or not user.is_authenticated:
        return False, None
    return True, exam_for_review(user=user, exam_id=exam_id)


class MonitorConsumer(ClosesItsOwnConnections, SurvivesLayerOutage, AsyncJsonWebsocketConsumer):
    exam_id: int | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        exam_id = int(self.scope["url_route"]["kwargs"]["exam_id"])
        # Accept, then close with a code, so the page can tell "sign in again" from "not yours" (see consumers.py).
        signed_in, exam = await database_sync_to_async(_reviewer_and_exam)(exam_id, user)
        if not signed_in:
            await self.accept()
            await self.close(code=4401)
            return
        if exam is None:
            await self.accept()
            await self.close(code=4403)
            return
        self.exam_id = exam.pk
        self.user = user
        self.sent: list[float] = []
        # None until the page says which tiles it shows: a client that never says gets every thumbnail.
        self.visible: set[int] | None = None
        # The newest thumbnail of each student whose tile is off screen, sent when it scrolls into view.
        self.held: dict[int, dict[str, Any]] = {}
        await self.channel_layer.group_add(monitor_group(exam.pk), self.channel_name)
        await self.accept()
        tiles = await database_sync_to_async(exam_roster)(exam=exam)
        snapshot: SnapshotEvent = {"event": "SNAPSHOT", "exam_id": exam.pk, "tiles": tiles}
        await self.send_json(snapshot)

    async def disconnect(self, code: int) -> None:
        if self.exam_id is not None:
            await self.channel_layer.group_discard(monitor_group(self.exam_id), self.channel_name)

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        if len(text_data) > MAX_TEXT_BYTES:
            return None
        return parse_message(text_data)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if self.exam_id is None:
            return
        if not isinstance(content, dict):
            await self.send_json(
                {"event": "ERROR", "message": "Messages must be JSON objects, nested at most 16 deep."}
            )
            return
        if content.get("type") == "ping":
            await self.send_json({"event": "PONG"})
        elif content.get("type") == "message":
            await self._send_message(content)
        elif content.get("type") == "visible":
            await self._set_visible(content.get("attempt_ids"))
        else:
            await self.send_json(
                {"event": "ERROR", "message": "Unknown message type; expected message, visible or ping."}
            )

    async def _set_visible(self, attempt_ids: Any) -> None:
        """The page's tiles on screen: their thumbnails flow, the others' wait here (the newest one each)."""
        if (
            not isinstance(attempt_ids, list)
            or len(attempt_ids) > MAX_VISIBLE
            or any(isinstance(a, bool) or not isinstance(a, int) for a in attempt_ids)
        ):
            await self.send_json(
                {"event": "ERROR", "message": f"attempt_ids must be a list of at most {MAX_VISIBLE} numbers."}
            )
            return
        self.visible = set(attempt_ids)
        for attempt_id in sorted(self.visible & self.held.keys()):
            await self.send_json({"event": "STATUS", **self.held.pop(attempt_id)})

    async def _send_message(self, content: dict[str, Any]) -> None:
        now = time.monotonic()
        self.sent = [t for t in self.sent if now - t < 60]
        if len(self.sent) >= MESSAGES_PER_MINUTE:
            await self.send_json({"event": "ERROR", "message": "Too many messages this minute; wait a moment."})
            return
        attempt_id = content.get("attempt_id")
        if isinstance(attempt_id, bool) or not isinstance(attempt_id, int):
            await self.send_json({"event": "ERROR", "message": "attempt_id must be a number."})
            return
        try:
            record = await database_sync_to_async(instructor_message_create)(
                attempt_id=attempt_id, sender=self.user, text=str(content.get("message", "")), exam_id=self.exam_id
            )
        except ReviewError as exc:
            await self.send_json({"event": "ERROR", "attempt_id": attempt_id, "message": exc.message})
            return
        self.sent.append(now)
        await self.channel_layer.group_send(
            attempt_group(attempt_id), {"type": "proctor.instructor_message", "event": instructor_message_event(record)}
        )
        await self.send_json(
            {"event": "MESSAGE_SENT", "attempt_id": attempt_id, "message_id": record.pk, "message": record.text}
        )

    # --- Channel layer -> this socket ------------------------------------------------------------------------

    async def monitor_status(self, event: dict[str, Any]) -> None:
        """A student's proctoring consumer reports connection, attention, latest alert and (sometimes) a thumbnail."""
        status = {k: v for k, v in event.items() if k != "type"}
        attempt_id = status.get("attempt_id")
        shown = self.visible
        if status.get("thumbnail") and isinstance(attempt_id, int) and shown is not None and attempt_id not in shown:
            # Off screen: keep the newest picture for when the tile scrolls into view, send the rest now.
            self.held[attempt_id] = {
                "attempt_id": attempt_id,
                "student_id": status.get("student_id"),
                "thumbnail": status.pop("thumbnail"),
                "at": status.get("at"),
            }
        await self.send_json({"event": "STATUS", **status})
