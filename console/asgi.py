"""ASGI entry point: HTTP and websockets through Channels, lifespan through our runtime.

Channels' ProtocolTypeRouter has no lifespan support, so lifespan is answered here; uvicorn is run
with lifespan "on" and the background services start and stop with the server.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

from django.core.asgi import get_asgi_application

django_http = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from console.foundation.websockets import guarded  # noqa: E402
from console.routing import websocket_urlpatterns  # noqa: E402
from console.runtime import Runtime  # noqa: E402

protocols = ProtocolTypeRouter({"http": django_http, "websocket": guarded(websocket_urlpatterns)})


async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
    else:
        await protocols(scope, receive, send)


async def _lifespan(receive, send) -> None:
    runtime: Runtime | None = None
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                runtime = Runtime() if settings.CONSOLE_RUN_SERVICES else Runtime([])
                await runtime.start()
            except Exception as error:
                await send({"type": "lifespan.startup.failed", "message": str(error)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if runtime is not None:
                await runtime.stop()
            await send({"type": "lifespan.shutdown.complete"})
            return
