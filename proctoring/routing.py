from __future__ import annotations

from django.urls import path

from proctoring.consumers import ProctorConsumer
from proctoring.monitor import MonitorConsumer

websocket_urlpatterns: list = [
    path("ws/proctor/<int:attempt_id>/", ProctorConsumer.as_asgi()),
    path("ws/monitor/<int:exam_id>/", MonitorConsumer.as_asgi()),
]
