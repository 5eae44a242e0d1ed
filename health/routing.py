from __future__ import annotations

from django.urls import path

from health import consumers

websocket_urlpatterns: list = [
    path("ws/health/", consumers.HealthPageConsumer.as_asgi()),
]
