"""/ws/ports/<port>/: the port page kept current while it is open.

The socket joins the sampler's channel group and, whenever a change names this port (it opened,
closed, changed owner or gained a founder), re-renders the page's live sections (the badge, the
explanation, the holders with their server and the history) from the same partials and the same
context as the page itself (`ports.port_view.page_context`). The Terminate and Stop panel is left
as the person has it. Read-only: a viewer may watch; the actions stay with the page's forms, the
API and /ws/v1/events, each behind the gate.
"""

from __future__ import annotations

import asyncio
import os

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from console.foundation.limits import PORT_MAX, PORT_MIN
from console.foundation.roles import OPERATOR, has_role
from console.foundation.websockets import authenticate, json_object, watch_rights
from ports import sampler
from ports.consumers import NOT_AUTHENTICATED
from ports.port_view import page_context
from ports.stopping import DEFAULT_GRACE_SECONDS

NO_SUCH_PORT = 4404
SECTIONS_TEMPLATE = "ports/detail.html#port-sections"
# A port that nothing listens on and that still will not bind (TIME_WAIT, a bound socket that
# never listened) frees without an event from the sampler: it is looked at again this often.
RECHECK_SECONDS = 5.0
# The page's render time and the sampler's store of a change can cross by a few milliseconds;
# a resync covers changes from a little before the page's render.
RESYNC_MARGIN_SECONDS = 1.0


class PortPageConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.port: int = self.scope["url_route"]["kwargs"]["port"]
        self.refresher: asyncio.Task | None = None
        self.recheck: asyncio.TimerHandle | None = None
        self.dirty = False
        self.sent = ""  # the sections as last sent
        if not PORT_MIN <= self.port <= PORT_MAX:
            await self.close(code=NO_SUCH_PORT)
            return
        self.user, _scope = await authenticate(self.scope, allow_bearer=False)
        if self.user is None:
            await self.close(code=NOT_AUTHENTICATED)
            return
        await self.channel_layer.group_add(sampler.GROUP, self.channel_name)
        await self.accept()
        self.watcher = asyncio.create_task(watch_rights(self, self.user, None, NOT_AUTHENTICATED))

    async def disconnect(self, code: int) -> None:
        for task in (getattr(self, "watcher", None), getattr(self, "refresher", None)):
            if task is not None:
                task.cancel()
        recheck = getattr(self, "recheck", None)
        if recheck is not None:
            recheck.cancel()
        await self.channel_layer.group_discard(sampler.GROUP, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        """{"since": epoch seconds}: the page rendered then (a reconnect, or its Terminate or
        Stop answer replaced the sections); it is sent the sections if anything changed since."""
        params = json_object(text_data)
        if params is None:
            return
        try:
            since = float(params.get("since") or 0)
        except (ValueError, TypeError):
            return
        if sampler.changed_since(since - RESYNC_MARGIN_SECONDS):
            self._refresh()

    async def ports_changes(self, message: dict) -> None:
        if any(change["listener"]["port"] == self.port for change in message["changes"]):
            self._refresh()

    def _refresh(self) -> None:
        """Render and send the sections once more. A burst of changes (a server forking its
        workers) while a render runs costs one more render, not one per change."""
        self.dirty = True
        if self.refresher is None or self.refresher.done():
            self.refresher = asyncio.create_task(self._send_sections())

    async def _send_sections(self) -> None:
        while self.dirty:
            self.dirty = False
            html, settled = await database_sync_to_async(self._render)()
            if html != self.sent:  # a recheck that found nothing new leaves the page alone
                await self.send(text_data=html)
                self.sent = html
        if self.recheck is not None:
            self.recheck.cancel()
            self.recheck = None
        if not settled:
            self.recheck = asyncio.get_running_loop().call_later(RECHECK_SECONDS, self._refresh)

    def _render(self) -> tuple[str, bool]:
        """The sections' HTML, and whether the port is settled (held, or free to bind)."""
        # The role is asked at each render: an operator demoted meanwhile loses the buttons.
        context = page_context(self.port, can_operate=has_role(self.user, OPERATOR))
        context.update(
            oob=True, console_pid=os.getpid(), default_grace_seconds=DEFAULT_GRACE_SECONDS
        )
        settled = bool(context["listeners"]) or context["free"]
        return render_to_string(SECTIONS_TEMPLATE, context), settled
