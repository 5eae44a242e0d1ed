from __future__ import annotations

from console.foundation.websockets import websocket_path
from ports import consumers, port_consumer

websocket_urlpatterns: list = [
    websocket_path("ws/ports/", consumers.PortsPageConsumer.as_asgi()),
    websocket_path("ws/ports/<int:port>/", port_consumer.PortPageConsumer.as_asgi()),
    websocket_path("ws/v1/events", consumers.EventStreamConsumer.as_asgi()),
]
