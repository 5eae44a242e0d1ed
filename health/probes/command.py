"""Command: an argv run without a shell; exit code and output checked; the whole group killed.

The child gets its own session so that a timeout kills what it started too (a script that
spawns a server would otherwise leave it behind).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time

from health.probes.results import ProbeFailed, ProbeResult, Target

OUTPUT_LIMIT = 256 * 1024


async def probe(target: Target, timeout: float) -> ProbeResult:
    argv = [str(arg) for arg in target.get("argv") or []]
    if not argv:
        raise ProbeFailed("no command given")
    started = time.perf_counter()
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as error:
        raise ProbeFailed(f"cannot start {argv[0]}: {error.strerror or error}") from error
    assert process.stdout is not None  # stdout=PIPE above
    try:
        output = await process.stdout.read(OUTPUT_LIMIT)
        code = await process.wait()
    except asyncio.CancelledError:
        _kill_group(process.pid)
        await process.wait()
        raise
    latency = (time.perf_counter() - started) * 1000
    text = output.decode("utf-8", "replace")
    expected = int(target.get("expect_exit", 0))
    if code != expected:
        raise ProbeFailed(f"exit code {code}, expected {expected}: {text.strip()[:150]}")
    if (needle := target.get("expect_output")) and needle not in text:
        raise ProbeFailed(f"output did not contain {needle!r}")
    return ProbeResult(True, latency, f"exit {code}")


def _kill_group(pid: int) -> None:
    # Our own child's process group (its session, created by start_new_session).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
