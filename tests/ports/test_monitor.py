"""`manage.py monitor` in its own process, publishing through the machine's real Redis."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from channels.layers import get_channel_layer

from ports.free_ports import find_free_port
from tests.conftest import skip_or_fail, spawn_listener

ROOT = Path(__file__).resolve().parents[2]
REDIS = ("127.0.0.1", 6379)


def _redis_available() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def redis_layer(settings):
    if not _redis_available():
        skip_or_fail("Redis is not answering on 127.0.0.1:6379")
    # A prefix of our own: the machine's Redis is shared, and this test must not meet others.
    prefix = f"portside-test-{uuid.uuid4().hex[:8]}"
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:6379/0"], "prefix": prefix},
        }
    }
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield prefix
    channel_layers.backends.clear()


def _env(tmp_path: Path, prefix: str) -> dict:
    env = {
        **os.environ,
        "CONSOLE_DATA_DIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
        "CONSOLE_REDIS_URL": "redis://127.0.0.1:6379/0",
        "CONSOLE_REDIS_PREFIX": prefix,
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


async def test_it_samples_in_its_own_process_and_publishes_over_redis(redis_layer, tmp_path):
    env = _env(tmp_path, redis_layer)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("ports", channel)
    monitor = subprocess.Popen(
        [sys.executable, "manage.py", "monitor"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    child = None
    try:
        line = ""
        while "monitor: running" not in line:
            line = await asyncio.to_thread(monitor.stdout.readline)
            assert line, "monitor exited before it started its services"
        assert "ports.sampler.run" in line
        await asyncio.sleep(0.6)  # its baseline sample
        port = find_free_port(34000)[0]
        child = await asyncio.to_thread(spawn_listener, port=port)
        mine: list = []
        for _ in range(20):
            message = await asyncio.wait_for(layer.receive(channel), timeout=5)
            mine = [c for c in message["changes"] if c["listener"]["port"] == port]
            if mine:
                break
        assert mine and mine[0]["kind"] == "opened"
        assert mine[0]["listener"]["pid"] == child.pid
    finally:
        if child is not None:
            await asyncio.to_thread(child.stop)
        os.kill(monitor.pid, signal.SIGTERM)  # our own child, by pid
        code = await asyncio.to_thread(monitor.wait, 15)
        await layer.group_discard("ports", channel)
    assert code == 0
