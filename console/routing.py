from __future__ import annotations

from console.foundation.websockets import websocket_path
from console.security.consumers import SecurityPageConsumer
from health.routing import websocket_urlpatterns as health_patterns
from ports.routing import websocket_urlpatterns as ports_patterns

# /ws/ports/ and /ws/v1/events come from ports, /ws/health/ from health.
websocket_urlpatterns: list = [
    *ports_patterns,
    *health_patterns,
    websocket_path("ws/security/", SecurityPageConsumer.as_asgi()),
]
