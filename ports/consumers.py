"""Live ports over websockets: HTML fragments for the Ports page, JSON events for scripts.

Both join the channel group the sampler publishes to. The page consumer renders the very row
partial the page renders, and only for rows that match the filter the page sent it; it keeps the
ids of the rows the page shows, so it names only those for removal.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from datetime import UTC, datetime
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer
from django.core.exceptions import PermissionDenied
from django.template.loader import render_to_string

from console.foundation.limits import PORT_MAX, PORT_MIN
from console.foundation.roles import OPERATOR
from console.foundation.websockets import (
    MAX_MESSAGE_BYTES,
    authenticate,
    json_object,
    refused,
    watch_rights,
)
from ports import inventory, operations, sampler
from ports.errors import ActionError
from ports.inventory.records import Listener
from ports.list_rows import header_of, page_rows, row_of, shown_rows, widest_servers
from ports.listing import ListenerFilter, listener_from_payload
from ports.models import PortEvent

NOT_AUTHENTICATED = 4401
# Port changes from the sampler; check state changes from the health scheduler.
EVENT_GROUPS = (sampler.GROUP, "health-events")
# HTML that other parts of the console render for this page (the exposure audit's badge).
PAGE_GROUP = "ports-page"


class PortsPageConsumer(AsyncWebsocketConsumer):
    """/ws/ports/: out-of-band row swaps for the Ports page of a signed-in user."""

    async def connect(self) -> None:
        self.user, _scope = await authenticate(self.scope, allow_bearer=False)
        if self.user is None:
            await self.close(code=NOT_AUTHENTICATED)
            return
        self.view = ListenerFilter()
        self.shown: dict[str, str] = {}  # row id -> group key ("" ungrouped), as on the page
        await self.channel_layer.group_add(sampler.GROUP, self.channel_name)
        await self.channel_layer.group_add(PAGE_GROUP, self.channel_name)
        await self.accept()
        self.watcher = asyncio.create_task(watch_rights(self, self.user, None, NOT_AUTHENTICATED))

    async def disconnect(self, code: int) -> None:
        _stop_watching(self)
        await self.channel_layer.group_discard(sampler.GROUP, self.channel_name)
        await self.channel_layer.group_discard(PAGE_GROUP, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        """The page's filter (htmx ws-send of a hidden form); answers with a resync if due."""
        params = json_object(text_data)
        if params is None:
            return
        self.view = ListenerFilter.from_params({k: str(v) for k, v in params.items()})
        try:
            rendered_at = float(params.get("since") or 0)
        except ValueError:
            rendered_at = 0.0
        resync = await asyncio.to_thread(self._learn_rows, rendered_at)
        if resync is not None:
            await self.send(text_data=resync)

    async def page_fragment(self, message: dict) -> None:
        """An out-of-band fragment rendered once for every open page (same for every user)."""
        await self.send(text_data=message["html"])

    async def ports_changes(self, message: dict) -> None:
        # Rendering is CPU work that would hold every other socket's messages back: all of one
        # message's fragments are rendered in one worker-thread call, then sent.
        fragments = await asyncio.to_thread(
            _change_fragments, message["changes"], self.view, self.shown
        )
        for fragment in fragments:
            await self.send(text_data=fragment)

    def _learn_rows(self, rendered_at: float) -> str | None:
        """Learn which rows the page shows; all of them again when it is behind the sampler.

        The page drew a snapshot of its own a moment before the sampler's, so this can name a
        row the page lacks (closed in between): its removal then finds nothing, which the page
        takes quietly (#port-removals), and a row the page has twice is kept once."""
        snapshot = sampler.current_snapshot()
        if not sampler.changed_since(rendered_at):
            self.shown = shown_rows(self.view, snapshot)
            return None
        rows = page_rows(self.view, snapshot)
        self.shown = rows.shown
        return render_to_string(
            "ports/list.html#port-rows",
            {"groups": rows.groups, "view": self.view, "console_pid": os.getpid(), "oob": True},
        )


class EventStreamConsumer(AsyncJsonWebsocketConsumer):
    """/ws/v1/events: JSON events for scripts (bearer header) and pages (session + Origin)."""

    async def connect(self) -> None:
        self.user, self.token_scope = await authenticate(self.scope, allow_bearer=True)
        if self.user is None:
            await self.close(code=NOT_AUTHENTICATED)
            return
        self.ports: set[int] | None = None
        self.checks: set[int] | None = None
        for group in EVENT_GROUPS:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        self.watcher = asyncio.create_task(
            watch_rights(self, self.user, self.token_scope, NOT_AUTHENTICATED)
        )

    async def disconnect(self, code: int) -> None:
        _stop_watching(self)
        for group in EVENT_GROUPS:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        if not text_data or len(text_data) > MAX_MESSAGE_BYTES:
            await self.send_json({"type": "error", "detail": "send JSON text under 4 KiB"})
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            await self.send_json({"type": "error", "detail": "not JSON"})
            return
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs) -> None:
        if isinstance(content, dict) and isinstance(content.get("terminate"), dict):
            await self._terminate(content["terminate"])
            return
        if isinstance(content, dict) and isinstance(content.get("stop"), dict):
            await self._stop(content["stop"])
            return
        subscribe = content.get("subscribe") if isinstance(content, dict) else None
        narrowed = _narrowing(subscribe, "ports", PORT_MAX), _narrowing(subscribe, "checks", 2**31)
        if isinstance(subscribe, dict) and subscribe and all(n is not INVALID for n in narrowed):
            # A key left out keeps its subscription; null means everything again.
            if "ports" in subscribe:
                self.ports = narrowed[0]
            if "checks" in subscribe:
                self.checks = narrowed[1]
        else:
            await self.send_json(
                {
                    "type": "error",
                    "detail": 'expected {"subscribe": {"ports": [5000, 8000], "checks": [1]}} '
                    f"with ports {PORT_MIN}-{PORT_MAX} (null: all)",
                }
            )
            return
        await self.send_json(
            {
                "type": "subscribed",
                "ports": sorted(self.ports) if self.ports is not None else None,
                "checks": sorted(self.checks) if self.checks is not None else None,
            }
        )

    async def _terminate(self, request: dict) -> None:
        """{"terminate": {"port", "pid", "create_time", "signal"}}: the API's action, same rules."""

        def parse() -> dict:
            signal = request.get("signal", "TERM")
            if signal not in ("TERM", "KILL"):
                raise ValueError(signal)
            return {
                "port": _port(int(request["port"])),
                "pid": int(request["pid"]),
                "create_time": _start_time(request["create_time"]),
                "signal": signal,
            }

        await self._act(
            "port.terminate",
            parse,
            f"terminate needs port ({PORT_MIN}-{PORT_MAX}), pid (a whole number) and "
            "create_time (a finite number of seconds), signal TERM or KILL",
            operations.terminate_for,
            lambda result: {"type": "terminated", **result.as_dict()},
        )

    async def _stop(self, request: dict) -> None:
        """{"stop": {"port", "server_pid", "server_create_time", "escalate", "dry_run"}}: the
        API's POST ports/{port}/stop, same rules and answer."""

        def parse() -> dict:
            flags = {name: request.get(name, False) for name in ("escalate", "dry_run")}
            if not all(isinstance(flag, bool) for flag in flags.values()):
                raise ValueError(flags)
            return {
                "port": _port(int(request["port"])),
                "server_pid": int(request["server_pid"]),
                "server_create_time": _start_time(request["server_create_time"]),
                **flags,
            }

        await self._act(
            "port.stop",
            parse,
            f"stop needs port ({PORT_MIN}-{PORT_MAX}), server_pid (a whole number) and "
            "server_create_time (finite seconds); escalate and dry_run are true or false",
            operations.stop_for,
            lambda result: {"type": "stopped", **result.as_dict()},
        )

    async def _act(self, action: str, parse, usage: str, perform, answer) -> None:
        """One socket action: the gate, then its arguments (422 with `usage`), then the same
        operation the API and the page call; a refusal or failure comes back as an error."""
        reason = await refused(self.scope, self.user, self.token_scope, OPERATOR, action)
        if reason is not None:
            await self.send_json({"type": "error", "status": 403, "detail": reason})
            return
        try:
            arguments = parse()
        except (KeyError, TypeError, ValueError, OverflowError):
            await self.send_json({"type": "error", "status": 422, "detail": usage})
            return
        try:
            result = await database_sync_to_async(perform)(
                self.user, scope=self.token_scope, **arguments
            )
        except PermissionDenied as error:
            await self.send_json({"type": "error", "status": 403, "detail": str(error)})
            return
        except ActionError as error:
            await self.send_json({"type": "error", "status": error.status, "detail": str(error)})
            return
        await self.send_json(answer(result))

    async def ports_changes(self, message: dict) -> None:
        for change in message["changes"]:
            listener = change["listener"]
            if self.ports is not None and listener["port"] not in self.ports:
                continue
            await self.send_json(
                {
                    "type": f"port.{change['kind']}",
                    "at": datetime.fromtimestamp(change["at"], tz=UTC).isoformat(),
                    "listener": listener,
                    "previous_pids": change["previous_pids"],
                }
            )

    async def health_transitions(self, message: dict) -> None:
        for transition in message["transitions"]:
            if self.checks is not None and transition["check"]["id"] not in self.checks:
                continue
            await self.send_json({"type": "check.state", **transition})


CHANGES_TEMPLATE = "ports/ws/changes.html"


def _port(port: int) -> int:
    if not PORT_MIN <= port <= PORT_MAX:
        raise ValueError(port)
    return port


def _start_time(value) -> float:
    start = float(value)
    # float() takes "nan" and "inf": no process started then.
    if not math.isfinite(start) or start < 0:
        raise ValueError(value)
    return start


def _change_fragments(
    changes: list[dict], view: ListenerFilter, shown: dict[str, str], servers_of=None
) -> list[str]:
    """The fragments the page gets for one message of changes, in order, one per websocket
    message: a removal and an insert in one message would lose the insert (see the template).
    `shown` (row id -> group key) is brought up to date with what the page will show.
    `servers_of` stands in for inventory.servers_of (tests)."""
    context = {"console_pid": os.getpid(), "view": view}
    listeners = [listener_from_payload(change["listener"]) for change in changes]
    # Without hiding or grouping, only the rows that match need their server (to draw them).
    candidates = [
        listener
        for change, listener in zip(changes, listeners, strict=True)
        if change["kind"] != PortEvent.CLOSED
        and (view.hide_system or view.group_by_server or view.matches(listener))
    ]
    servers = _servers_for(view, candidates, servers_of or inventory.servers_of)
    widest = widest_servers(servers.values()) if view.group_by_server else {}
    fragments: list[str] = []
    visible = []
    for change, listener in zip(changes, listeners, strict=True):
        row_id = f"listener-{listener.id}"
        was_shown = row_id in shown
        server = servers.get(listener.inode)
        matches = change["kind"] != PortEvent.CLOSED and view.matches(listener, server)
        # A re-owned row is drawn anew (its holders changed), and leaves when it stops matching.
        if was_shown and (change["kind"] != PortEvent.OPENED or not matches):
            removals = [row_id, *_emptied_group(shown, row_id)]
            fragments.append(
                render_to_string(f"{CHANGES_TEMPLATE}#row-remove", {"removals": removals})
            )
        if matches:
            header = header_of(listener, servers, widest) if view.group_by_server else None
            group = header.key if header else ""
            new_group = header is not None and group not in shown.values()
            shown[row_id] = group
            row = row_of(listener, server, group)
            fragments.append(
                render_to_string(
                    f"{CHANGES_TEMPLATE}#row-insert",
                    {**context, "row": row, "header": header if new_group else None},
                )
            )
        if (matches or was_shown) and change["kind"] != sampler.JOINED:  # a founder is no news
            visible.append({"kind": change["kind"], "listener": listener, "at": change["at"]})
    if visible:
        notices = {**context, "changes": visible, **sampler.summary()}
        fragments.append(render_to_string(f"{CHANGES_TEMPLATE}#notices", notices))
    return fragments


def _servers_for(view: ListenerFilter, listeners: list[Listener], servers_of) -> dict:
    """The servers the new rows need; grouped, every server of the snapshot, so a new kernel
    finds the notebook server it belongs under."""
    if not listeners:
        return {}
    if view.group_by_server:
        return servers_of([*sampler.current_snapshot().listeners, *listeners])
    return servers_of(listeners)


def _emptied_group(shown: dict[str, str], row_id: str) -> list[str]:
    """Forget a row; its group's header too when it was the group's last row."""
    group = shown.pop(row_id)
    return [group] if group and group not in shown.values() else []


def _stop_watching(consumer) -> None:
    watcher = getattr(consumer, "watcher", None)
    if watcher is not None:
        watcher.cancel()


INVALID = object()


def _narrowing(subscribe, key: str, highest: int):
    """The ids a subscription narrows `key` to: a set, None (everything) or INVALID."""
    if not isinstance(subscribe, dict) or subscribe.get(key) is None:
        return None
    values = subscribe[key]
    if isinstance(values, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= highest for v in values
    ):
        return set(values)
    return INVALID
