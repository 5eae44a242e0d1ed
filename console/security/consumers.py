"""/ws/security/: the Security page's live exposure findings, for admins only.

The exposure watch renders the page's section once per change and sends it to the group; this
consumer forwards it to each admin's page (an out-of-band swap), after the gate let the socket in.
"""

from __future__ import annotations

import asyncio

from channels.generic.websocket import AsyncWebsocketConsumer

from console.foundation.roles import ADMIN
from console.foundation.websockets import authenticate, refused, watch_rights

NOT_AUTHENTICATED, FORBIDDEN = 4401, 4403
PAGE_GROUP = "security-page"


class SecurityPageConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.user, _scope = await authenticate(self.scope, allow_bearer=False)
        if self.user is None:
            await self.close(code=NOT_AUTHENTICATED)
            return
        if await refused(self.scope, self.user, None, ADMIN, "security.page") is not None:
            await self.close(code=FORBIDDEN)
            return
        await self.channel_layer.group_add(PAGE_GROUP, self.channel_name)
        await self.accept()
        self.watcher = asyncio.create_task(
            watch_rights(self, self.user, None, NOT_AUTHENTICATED, role=ADMIN)
        )

    async def disconnect(self, code: int) -> None:
        watcher = getattr(self, "watcher", None)
        if watcher is not None:
            watcher.cancel()
        await self.channel_layer.group_discard(PAGE_GROUP, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        return  # the page only listens

    async def page_fragment(self, message: dict) -> None:
        await self.send(text_data=message["html"])
