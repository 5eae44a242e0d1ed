"""Real servers on 0.0.0.0 for the exposure audit's tests (probed through 127.0.0.1 only)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import textwrap
import time

WERKZEUG_APP = textwrap.dedent(
    """
    import sys
    from werkzeug.serving import run_simple
    from werkzeug.wrappers import Response

    def app(environ, start_response):
        return Response("hello")(environ, start_response)

    run_simple("0.0.0.0", int(sys.argv[1]), app, use_debugger=True, use_reloader=False)
    """
)


def start_server(argv: list[str], port: int, **kwargs) -> subprocess.Popen:
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.1)
    stop_server(process)
    raise AssertionError(f"{argv[0]} did not listen on {port}")


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)  # our own child, by pid
    process.wait(timeout=10)
