from __future__ import annotations

from django.urls import path

from ports import consumers

websocket_urlpatterns: list = [
    path("ws/ports/", consumers.PortsPageConsumer.as_asgi()),
    path("ws/v1/events", consumers.EventStreamConsumer.as_asgi()),
]
