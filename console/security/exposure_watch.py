"""The live exposure audit: each new listener judged as the sampler sees it, findings pushed.

A background service (settings.CONSOLE_SERVICES) beside the port sampler. It wakes on the
sampler's change messages (channel group "ports") and reconciles its findings, kept per listener
by socket identity, with the sampler's latest snapshot: a new all-interfaces TCP listener is
probed through loopback at once, a gone one is forgotten. Reconciling against the snapshot rather
than replaying each message coalesces bursts and cannot miss a dropped message.

When the findings change, the Ports page's badge and the Security page's section are rendered
once and pushed to every open page (out-of-band swaps); a dangerous finding
that is new is sent as an "exposure" alert to every channel that asked for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.template.loader import render_to_string

from console.security import exposures, posture
from console.security.consumers import PAGE_GROUP as SECURITY_PAGE_GROUP
from console.security.exposures import DANGER, Audit, Finding, Key
from health import alerts
from ports import sampler
from ports.consumers import PAGE_GROUP as PORTS_PAGE_GROUP
from ports.inventory.records import Listener

logger = logging.getLogger("console.exposures")

# Reconcile at least this often even without a change message (a message the layer dropped).
RECONCILE_EVERY_SECONDS = 5.0


class ExposureWatch:
    """Findings per listener, updated as listeners come and go."""

    def __init__(self) -> None:
        self.findings: dict[Key, Finding] = {}
        self.seen: tuple[Listener, ...] | None = None  # the listeners last reconciled
        self.pids: dict[Key, tuple[int, ...]] = {}
        self.checked_at = time.time()
        self.duration_ms = 0.0

    def audit(self) -> Audit:
        findings = self.findings  # one read: the loop replaces the dict, never mutates it
        return Audit(
            checked_at=self.checked_at,
            duration_ms=self.duration_ms,
            probed=sum(1 for finding in findings.values() if finding.probed),
            findings=exposures.ordered(findings.values()),
        )

    def listeners(self) -> list[Listener]:
        if self.seen is None:  # not reconciled yet: what the sampler (or a new sample) sees
            return list(sampler.current_snapshot().listeners)
        return list(self.seen)

    def replace(self, audit: Audit, findings: dict[Key, Finding]) -> Audit:
        """A full audit run on request ("Run again") becomes the watch's state."""
        self.findings = findings
        self.checked_at, self.duration_ms = audit.checked_at, audit.duration_ms
        return audit

    async def reconcile(self, listeners: tuple[Listener, ...]) -> tuple[bool, list[Finding]]:
        """Judge new listeners (and re-owned ones), forget gone ones.

        Returns whether the findings changed and the dangerous findings that are new.
        """
        if listeners is self.seen:
            return False, []
        started = time.perf_counter()
        current = {listener.key: listener for listener in listeners}
        fresh = [
            listener
            for key, listener in current.items()
            if key not in self.pids or self.pids[key] != listener.pids
        ]
        judged, _probed = await exposures.judge(fresh) if fresh else ({}, 0)
        before = self.findings
        after = {key: finding for key, finding in before.items() if key in current}
        for listener in fresh:
            after.pop(listener.key, None)
        after.update(judged)
        new_dangers = [
            finding
            for key, finding in judged.items()
            if finding.severity == DANGER
            and (key not in before or before[key].kind != finding.kind)
        ]
        self.seen, self.pids = listeners, {key: lst.pids for key, lst in current.items()}
        changed = after != before
        self.findings = after
        if fresh:
            self.checked_at = time.time()
            self.duration_ms = round((time.perf_counter() - started) * 1000, 1)
        return changed, new_dangers


def current() -> ExposureWatch | None:
    """The watch running in this process, if any (the one exposures' readers are given)."""
    watching = exposures.watching()
    return watching if isinstance(watching, ExposureWatch) else None


async def run(stop: asyncio.Event) -> None:
    """The background service: watch until `stop` is set."""
    layer = get_channel_layer()
    if layer is None:
        logger.warning("no channel layer: the exposure audit is not live")
        return
    channel = await layer.new_channel()
    await layer.group_add(sampler.GROUP, channel)
    watch = ExposureWatch()
    exposures.watch_with(watch)
    try:
        while not stop.is_set():
            snapshot = sampler.live.snapshot
            if snapshot is not None:
                try:
                    await _step(watch, snapshot.listeners, layer)
                except Exception:
                    # A failed probe round is logged and tried again at the next change.
                    logger.exception("exposure audit round failed")
                    watch.seen = None
            await _next_wake(layer, channel, stop)
    finally:
        exposures.watch_with(None)
        with contextlib.suppress(Exception):
            await layer.group_discard(sampler.GROUP, channel)


async def _step(watch: ExposureWatch, listeners: tuple[Listener, ...], layer) -> None:
    changed, new_dangers = await watch.reconcile(listeners)
    if new_dangers:
        for finding in new_dangers:
            logger.warning(
                "dangerous exposure: port %s %s (%s)", finding.port, finding.kind, finding.process
            )
        await sync_to_async(alerts.enqueue_exposures)(new_dangers)
    if changed:
        badge, *security_page = await asyncio.to_thread(_render, watch.audit())
        await layer.group_send(PORTS_PAGE_GROUP, {"type": "page.fragment", "html": badge})
        for html in security_page:
            await layer.group_send(SECURITY_PAGE_GROUP, {"type": "page.fragment", "html": html})


def _render(audit: Audit) -> list[str]:
    """The Ports page's badge, the Security page's exposure section and its posture row,
    rendered once per change for every open page, off the event loop. The row goes alone: a
    <tr> after a <section> in one message would be dropped by the HTML parser."""
    context = {"exposure_audit": audit, "oob": True}
    return [
        render_to_string("console/exposure_badge.html", context),
        render_to_string("console/security.html#exposure-section", context),
        *(
            render_to_string("console/security.html#posture-row", {"item": item, "oob": True})
            for item in posture.exposure_items(audit)
        ),
    ]


async def _next_wake(layer, channel: str, stop: asyncio.Event) -> None:
    """Until the sampler publishes a change, `stop` is set, or the reconcile interval passes."""
    receive = asyncio.ensure_future(layer.receive(channel))
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait(
            {receive, stopped},
            timeout=RECONCILE_EVERY_SECONDS,
            return_when=asyncio.FIRST_COMPLETED,
        )
    finally:
        for waiting in (receive, stopped):
            waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await receive
