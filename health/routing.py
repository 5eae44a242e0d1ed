from __future__ import annotations

from console.foundation.websockets import websocket_path
from health import consumers

websocket_urlpatterns: list = [
    websocket_path("ws/health/", consumers.HealthPageConsumer.as_asgi()),
]
