"""The uvicorn server `serve` runs: uvicorn's, minus nine of its ten wake-ups a second.

uvicorn's main loop wakes every 100 ms to notice a stop request and, every tenth time, to refresh
the Date header. On an idle console that tick was a fifth of the process's CPU (0.2% of a core on
the 2-vCPU machines here; docs/benchmarks.md, "Live updates"). This loop wakes once a second for
the Date header, and at once when a signal asks it to stop, so shutdown is as prompt as before.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import FrameType

import uvicorn

DATE_HEADER_EVERY_S = 1.0


class QuietServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exit_requested: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._exit_requested = asyncio.Event()
        # on_tick refreshes the Date header when the counter is a multiple of 10.
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 10) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit_requested.wait(), DATE_HEADER_EVERY_S)
            should_exit = await self.on_tick(counter)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        # A signal handler runs between two bytecodes of the loop's thread: hand the wake-up to
        # the loop rather than touching the event in the middle of whatever it was doing.
        if self._loop is not None and self._exit_requested is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                self._loop.call_soon_threadsafe(self._exit_requested.set)
