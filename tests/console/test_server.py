"""QuietServer: uvicorn's server with a once-a-second tick that a stop signal cuts short."""

from __future__ import annotations

import asyncio
import signal
import time

import uvicorn

from console.server import DATE_HEADER_EVERY_S, QuietServer


async def _app(scope, receive, send):  # never called: the server is not started
    raise AssertionError("not served")


async def test_a_stop_signal_ends_the_main_loop_at_once_not_at_the_next_tick():
    server = QuietServer(uvicorn.Config(_app, lifespan="off"))
    loop_task = asyncio.create_task(server.main_loop())
    await asyncio.sleep(0.05)  # the loop is waiting for its next tick
    assert not loop_task.done()
    started = time.monotonic()
    server.handle_exit(signal.SIGTERM, None)  # what uvicorn's signal handler calls
    await asyncio.wait_for(loop_task, timeout=DATE_HEADER_EVERY_S * 3)
    assert time.monotonic() - started < DATE_HEADER_EVERY_S / 2
    assert server.should_exit


async def test_it_keeps_the_date_header_fresh():
    server = QuietServer(uvicorn.Config(_app, lifespan="off"))
    server.config.load()
    loop_task = asyncio.create_task(server.main_loop())
    await asyncio.sleep(0.05)
    first = dict(server.server_state.default_headers)[b"date"]
    await asyncio.sleep(DATE_HEADER_EVERY_S + 1.1)
    assert dict(server.server_state.default_headers)[b"date"] != first
    server.handle_exit(signal.SIGTERM, None)
    await asyncio.wait_for(loop_task, timeout=3)
