"""`manage.py serve` on a port a departed server left in TIME_WAIT (a real one, on loopback)."""

from __future__ import annotations

import socket

from tests.console.test_serve import _read_until, _serve, _stop
from tests.ports.time_wait_helpers import leave_time_wait


def test_it_says_its_port_is_in_time_wait_in_one_line(tmp_path):
    # A server without SO_REUSEADDR closed first: not even serve's SO_REUSEADDR bind succeeds.
    port = leave_time_wait(reuse_address=False)
    process = _serve(tmp_path, "--port", str(port), "--no-migrate")
    output, _ = process.communicate(timeout=30)
    assert process.returncode != 0, output
    assert "Traceback" not in output
    (reason,) = [line for line in output.splitlines() if f"port {port} is in TIME_WAIT" in line]
    assert "TIME_WAIT lasts 60 s on Linux" in reason
    assert "did not set SO_REUSEADDR" in reason
    assert "--port auto" in output


def test_it_binds_a_port_a_reuse_address_server_left_in_time_wait(tmp_path):
    # The kernel lets a SO_REUSEADDR bind (serve's, uvicorn's) share the port with TIME_WAIT
    # connections whose server had set it too.
    port = leave_time_wait(reuse_address=True)
    process = _serve(tmp_path, "--port", str(port))
    try:
        output = "".join(_read_until(process, r"serving at"))
        assert f"http://127.0.0.1:{port}/" in output
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            pass
    finally:
        assert _stop(process) == 0
