"""/ws/health/: the Health page's live rows, as out-of-band HTML fragments."""

from __future__ import annotations

import asyncio

from channels.generic.websocket import AsyncWebsocketConsumer

from console.foundation.websockets import authenticate, watch_rights

GROUP = "health.page"
NOT_AUTHENTICATED = 4401
# Pages connected to this process: with the in-memory layer nobody else can be listening, so
# the scheduler skips rendering rows for nobody.
local_viewers = 0


class HealthPageConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        global local_viewers
        self.user, _scope = await authenticate(self.scope, allow_bearer=False)
        if self.user is None:
            await self.close(code=NOT_AUTHENTICATED)
            return
        await self.channel_layer.group_add(GROUP, self.channel_name)
        local_viewers += 1
        self.joined = True
        await self.accept()
        self.watcher = asyncio.create_task(watch_rights(self, self.user, None, NOT_AUTHENTICATED))

    async def disconnect(self, code: int) -> None:
        global local_viewers
        if watcher := getattr(self, "watcher", None):
            watcher.cancel()
        if getattr(self, "joined", False):
            local_viewers -= 1
            await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        """The page sends nothing we act on."""

    async def health_rows(self, message: dict) -> None:
        await self.send(text_data=message["html"])
