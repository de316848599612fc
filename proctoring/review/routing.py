from __future__ import annotations

from django.urls import path

from proctoring.review.consumers import MonitorConsumer

websocket_urlpatterns: list = [
    path("ws/monitor/<int:exam_id>/", MonitorConsumer.as_asgi()),
]
