from __future__ import annotations

# Each app adds its consumers here: /ws/ports/, /ws/health/, /ws/v1/events.
websocket_urlpatterns: list = []
