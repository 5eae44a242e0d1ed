"""A background service's own thread for ORM work.

Django's async ORM and asgiref's sync_to_async queue on one shared thread, which every service
and websocket consumer uses: a burst of port events must not wait behind a slow alert delivery,
nor hold one up. Each service therefore runs its database work here, on a thread of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from channels.db import database_sync_to_async
from django import db


class DatabaseThread:
    """One worker thread and its connection, closed by `close()` when the service stops.

    `as_request=True` treats each call as a request: the connection is checked before and after
    (Channels' database_sync_to_async), so an aged or broken one is replaced. A service that
    polls every second can pass False to keep its connection; it is then closed only after a
    call failed, so a restarted database is reconnected to at the next call.
    """

    def __init__(self, name: str, *, as_request: bool = True) -> None:
        self.name = name
        self.as_request = as_request
        self._executor: ThreadPoolExecutor | None = None

    def _thread(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)
        return self._executor

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        executor = self._thread()
        if self.as_request:
            call = database_sync_to_async(function, thread_sensitive=False, executor=executor)
            return await call(*args)
        return await asyncio.get_running_loop().run_in_executor(
            executor, _closing_after_failure, function, args
        )

    def wrap(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """`function` as a coroutine function that runs on this thread."""

        async def on_thread(*args: Any) -> Any:
            return await self.run(function, *args)

        return on_thread

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(executor, db.connections.close_all)
            executor.shutdown(wait=False)


def _closing_after_failure(function: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    try:
        return function(*args)
    except db.Error:
        db.connections.close_all()  # a broken connection is not kept for the next call
        raise
