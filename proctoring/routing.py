from __future__ import annotations

from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import path, re_path

from proctoring.check_socket import CheckConsumer
from proctoring.consumers import ProctorConsumer
from proctoring.monitor import MonitorConsumer


class UnknownPathConsumer(AsyncWebsocketConsumer):
    """Any other WebSocket path: accepted and closed with 4404, as an unknown attempt is. Without it Channels'
    router raised "No route found", which daphne answered with HTTP 500 and a traceback in the log."""

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=4404)


websocket_urlpatterns: list = [
    path("ws/proctor/<int:attempt_id>/", ProctorConsumer.as_asgi()),
    path("ws/monitor/<int:exam_id>/", MonitorConsumer.as_asgi()),
    path("ws/check/", CheckConsumer.as_asgi()),
    re_path(r"", UnknownPathConsumer.as_asgi()),
]
