"""Background services of the console, started and stopped by the ASGI lifespan.

`serve` runs them inside the web process; `manage.py monitor` runs the same list alone. Each
service is an async callable taking a `stop` event; it must return promptly once it is set.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger("console.runtime")

Service = Callable[[asyncio.Event], Awaitable[None]]


class Runtime:
    def __init__(self, service_paths: list[str] | None = None):
        self.service_paths = (
            service_paths if service_paths is not None else settings.CONSOLE_SERVICES
        )
        self.stop_event = asyncio.Event()
        self.tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        for path in self.service_paths:
            service: Service = import_string(path)
            task = asyncio.create_task(self._supervise(path, service), name=path)
            self.tasks.append(task)
        logger.info("started %d background service(s)", len(self.tasks))

    async def _supervise(self, path: str, service: Service) -> None:
        try:
            await service(self.stop_event)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A crashed service is logged, never silently gone; the web process keeps serving.
            logger.exception("background service %s crashed", path)

    async def stop(self, timeout: float = 5.0) -> None:
        self.stop_event.set()
        if not self.tasks:
            return
        _done, pending = await asyncio.wait(self.tasks, timeout=timeout)
        for task in pending:
            logger.warning("service %s did not stop in %.0fs; cancelling", task.get_name(), timeout)
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self.tasks.clear()
