from __future__ import annotations

from django.urls import path

from proctoring.check_socket import CheckConsumer
from proctoring.consumers import ProctorConsumer

websocket_urlpatterns: list = [
    path("ws/proctor/<int:attempt_id>/", ProctorConsumer.as_asgi()),
    path("ws/check/", CheckConsumer.as_asgi()),
]
