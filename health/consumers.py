"""/ws/health/: the Health pages' live parts, as out-of-band HTML fragments.

A page says what it shows (a hidden form the socket sends on load and after a reconnect): the
list its search and state (`q`, `state`), a check's page its `check`. Until it has, nothing is
pushed: a fragment whose target is not on the page is an htmx error.
"""

from __future__ import annotations

import asyncio

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from console.foundation.websockets import authenticate, json_object, watch_rights
from health import dashboard, live

GROUP = live.GROUP
NOT_AUTHENTICATED = 4401


class HealthPageConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.user, _scope = await authenticate(self.scope, allow_bearer=False)
        if self.user is None:
            await self.close(code=NOT_AUTHENTICATED)
            return
        # The rows of the list this page shows, or the one check whose page it is.
        self.shown: set[int] | None = None
        self.check_id: int | None = None
        await self.channel_layer.group_add(GROUP, self.channel_name)
        live.Viewers.count += 1
        self.joined = True
        await self.accept()
        self.watcher = asyncio.create_task(watch_rights(self, self.user, None, NOT_AUTHENTICATED))

    async def disconnect(self, code: int) -> None:
        if watcher := getattr(self, "watcher", None):
            watcher.cancel()
        if getattr(self, "joined", False):
            live.Viewers.count -= 1
            await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        """What the page shows; with `resync`, it also gets its current state (it may have
        missed changes while the socket was down)."""
        params = json_object(text_data)
        if params is None:
            return
        resync = str(params.get("resync") or "") == "1"
        if params.get("check"):
            try:
                self.check_id, self.shown = int(str(params["check"])), None
            except ValueError:
                return
            if resync:
                await self._send_detail()
            return
        q = str(params.get("q") or "").strip()[:100]
        state = str(params.get("state") or "")
        self.check_id = None
        self.shown = await database_sync_to_async(_shown)(q, state)
        if resync and self.shown:
            message = await database_sync_to_async(live.render_rows)(sorted(self.shown))
            await self.health_rows(message)

    async def health_rows(self, message: dict) -> None:
        if self.check_id is not None:
            if self.check_id in message["ids"]:
                await self._send_detail()
            return
        if self.shown is None:
            return
        rows = [html for check_id, html in message["rows"] if check_id in self.shown]
        await self.send(text_data="".join(rows) + message["summary"])

    async def _send_detail(self) -> None:
        if self.check_id is None:
            return
        html = await database_sync_to_async(live.render_detail)(self.user, self.check_id)
        if html:
            await self.send(text_data=html)


def _shown(q: str, state: str) -> set[int]:
    return set(dashboard.filtered(q, state).values_list("id", flat=True))
