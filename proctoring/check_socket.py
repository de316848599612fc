"""The system check's connection test at /ws/check/: a signed-in user's socket that answers READY and a ping, and
records nothing. The check used to open the attempt's proctoring socket, which started a proctoring session and left
a connect and a disconnect on the attempt's record before the exam had begun (issue 12); and before an attempt
exists there is no session to open."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.db import DatabaseError

from examsite.websocket import TRY_AGAIN_LATER, ClosesItsOwnConnections, SurvivesLayerOutage
from proctoring.consumers import parse_message

MAX_TEXT_BYTES = 1024


def signed_in(user: Any) -> bool:
    """Called in a sync thread: the handshake leaves the user to be looked up on first use (UserOnFirstUse)."""
    return user is not None and bool(user.is_authenticated)


class CheckConsumer(ClosesItsOwnConnections, SurvivesLayerOutage, AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()
        try:
            known = await database_sync_to_async(signed_in)(self.scope.get("user"))
        except DatabaseError:
            await self.close(code=TRY_AGAIN_LATER)
            return
        if not known:
            await self.close(code=4401)
            return
        await self.send_json({"event": "READY", "check": True})

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        return parse_message(text_data) if len(text_data) <= MAX_TEXT_BYTES else None

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"event": "PONG"})
        else:
            await self.send_json({"event": "ERROR", "message": "The check socket only answers ping."})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        if bytes_data is not None:
            await self.close(code=1003)  # no frames here: the check sends its frames to the enrolment endpoint
            return
        await super().receive(text_data=text_data, bytes_data=bytes_data, **kwargs)
