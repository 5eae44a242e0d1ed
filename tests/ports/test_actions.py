"""ports.stopping and ports.free_ports against real child processes and real sockets, loopback only.

Every process signalled here is one this file started; the refusal tests swap the signal sender
for a recorder, so a bug can never reach pid 1 or the test runner.
"""

from __future__ import annotations

import errno
import os
import pwd
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from ports import errors, free_ports, inventory, stopping
from ports.inventory.records import ProcessInfo

# Holds a listening socket on 127.0.0.1 until signalled; exits by itself after a minute so a
# crashed test run cannot leave it behind. argv[1] == "1": ignore SIGTERM.
HOLDER = """
import signal, socket, sys, time
if sys.argv[1] == "1":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen()
print(sock.getsockname()[1], flush=True)
time.sleep(60)
"""


class Holder:
    def __init__(self, proc: subprocess.Popen[str], port: int) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.port = port

    @property
    def create_time(self) -> float:
        info = inventory.process_info(self.pid)
        assert info is not None
        return info.create_time

    def is_running(self) -> bool:
        # Popen.poll also copes with a child that terminate() has already reaped.
        return self.proc.poll() is None


class Recorder:
    """Stands in for the signal sender: records, or raises what it is told to."""

    def __init__(self, raises: BaseException | None = None) -> None:
        self.calls: list[tuple[int, int, int | None]] = []
        self.raises = raises

    def __call__(self, pid: int, signum: int, pidfd: int | None) -> None:
        self.calls.append((pid, signum, pidfd))
        if self.raises is not None:
            raise self.raises


def _must_not_run(*args: object) -> None:
    raise AssertionError("refusals must happen before the inventory is consulted")


@pytest.fixture
def spawn() -> Iterator[Callable[..., Holder]]:
    started: list[subprocess.Popen[str]] = []

    def start(*, ignore_term: bool = False) -> Holder:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, "1" if ignore_term else "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the port, once the socket listens
        assert line.strip().isdigit(), f"holder did not start: {line!r}"
        return Holder(proc, int(line))

    try:
        yield start
    finally:
        for proc in started:
            # By its pid, through Popen: a no-op once the child is gone or reaped, so a
            # recycled pid is never hit.
            proc.kill()
            proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()


# --- terminate, for real -----------------------------------------------------------------------


def test_it_terminates_a_normal_child(spawn: Callable[..., Holder]) -> None:
    holder = spawn()
    result = stopping.terminate(holder.port, holder.pid, holder.create_time, grace_seconds=5)
    assert result.pid == holder.pid
    assert result.outcome == "terminated"
    assert result.released is True
    assert result.signals_sent == ["TERM"]
    assert result.elapsed_ms < 5000
    assert not holder.is_running()
    assert not inventory.snapshot().on_port(holder.port)


def test_it_reports_still_running_then_kills_with_escalate(spawn: Callable[..., Holder]) -> None:
    holder = spawn(ignore_term=True)
    create_time = holder.create_time

    result = stopping.terminate(holder.port, holder.pid, create_time, grace_seconds=0.3)
    assert result.outcome == "still-running"
    assert result.released is False
    assert result.signals_sent == ["TERM"]
    assert result.elapsed_ms >= 300
    assert holder.is_running()

    result = stopping.terminate(
        holder.port, holder.pid, create_time, grace_seconds=0.2, escalate=True
    )
    assert result.outcome == "killed"
    assert result.released is True
    assert result.signals_sent == ["TERM", "KILL"]
    assert not holder.is_running()


def test_it_sends_kill_directly(spawn: Callable[..., Holder]) -> None:
    holder = spawn(ignore_term=True)
    result = stopping.terminate(holder.port, holder.pid, holder.create_time, signal="KILL")
    assert (result.outcome, result.released, result.signals_sent) == ("killed", True, ["KILL"])


def test_it_works_without_pidfd(
    spawn: Callable[..., Holder], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The non-Linux path: os.kill guarded by psutil's start-time check, polling for the exit.
    monkeypatch.setattr(stopping, "open_pidfd", lambda pid: None)
    holder = spawn()
    result = stopping.terminate(holder.port, holder.pid, holder.create_time, grace_seconds=5)
    assert (result.outcome, result.released) == ("terminated", True)


def test_it_sends_through_the_pidfd(
    spawn: Callable[..., Holder], monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[int, int, int | None]] = []

    def send(pid: int, signum: int, pidfd: int | None) -> None:
        sent.append((pid, signum, pidfd))
        stopping._send(pid, signum, pidfd)

    holder = spawn()
    stopping.terminate(holder.port, holder.pid, holder.create_time, send_signal=send)
    assert len(sent) == 1
    assert sent[0][:2] == (holder.pid, stopping.SIGNALS["TERM"])
    assert sent[0][2] is not None


# --- stale targets -----------------------------------------------------------------------------


def test_it_rejects_a_stale_create_time(spawn: Callable[..., Holder]) -> None:
    holder = spawn()
    recorder = Recorder()
    with pytest.raises(errors.StaleTarget, match="different process") as caught:
        stopping.terminate(holder.port, holder.pid, holder.create_time - 10, send_signal=recorder)
    assert caught.value.status == 409
    assert recorder.calls == []
    assert holder.is_running()


def test_it_rejects_a_pid_that_does_not_hold_the_port(spawn: Callable[..., Holder]) -> None:
    first, second = spawn(), spawn()
    recorder = Recorder()
    with pytest.raises(errors.StaleTarget, match=f"now held by pid {first.pid}") as caught:
        stopping.terminate(first.port, second.pid, second.create_time, send_signal=recorder)
    assert caught.value.status == 409
    assert recorder.calls == []
    assert first.is_running() and second.is_running()


def test_it_rejects_a_pid_reused_while_the_pidfd_opened(spawn: Callable[..., Holder]) -> None:
    # The second look (after pinning the process) sees another start time: a reused pid.
    holder = spawn()
    create_time = holder.create_time
    looks: list[int] = []

    def process_info(pid: int) -> ProcessInfo | None:
        looks.append(pid)
        info = inventory.process_info(pid)
        if info is not None and len(looks) > 1:
            info = ProcessInfo(
                pid=info.pid,
                name=info.name,
                user=info.user,
                cmdline=info.cmdline,
                cwd=info.cwd,
                create_time=info.create_time + 1,
            )
        return info

    recorder = Recorder()
    with pytest.raises(errors.StaleTarget):
        stopping.terminate(
            holder.port, holder.pid, create_time, process_info_fn=process_info, send_signal=recorder
        )
    assert len(looks) == 2
    assert recorder.calls == []
    assert holder.is_running()


# --- refusals: never a real signal --------------------------------------------------------------


@pytest.mark.parametrize(
    "pid",
    [
        pytest.param(1, id="init"),
        pytest.param(0, id="pid-0"),
        pytest.param(-1, id="every-process"),
        pytest.param(os.getpid(), id="test-runner"),
        pytest.param(os.getppid(), id="test-runner-parent"),
    ],
)
def test_it_refuses_protected_processes(pid: int) -> None:
    recorder = Recorder()
    with pytest.raises(errors.Refused) as caught:
        stopping.terminate(
            8000,
            pid,
            0.0,
            escalate=True,
            snapshot_fn=_must_not_run,
            process_info_fn=_must_not_run,
            send_signal=recorder,
        )
    assert caught.value.status == 403
    assert str(caught.value)
    assert recorder.calls == []


def test_it_refuses_every_ancestor() -> None:
    protected = stopping.protected_pids()
    assert {0, 1, os.getpid(), os.getppid()} <= protected
    for pid in protected - {0, 1, os.getpid(), os.getppid()}:
        recorder = Recorder()
        with pytest.raises(errors.Refused):
            stopping.terminate(8000, pid, 0.0, snapshot_fn=_must_not_run, send_signal=recorder)
        assert recorder.calls == []


def test_it_turns_a_permission_error_into_refused(spawn: Callable[..., Holder]) -> None:
    holder = spawn()
    recorder = Recorder(raises=PermissionError(errno.EPERM, "Operation not permitted"))
    info = inventory.process_info(holder.pid)
    assert info is not None
    with pytest.raises(errors.Refused) as caught:
        stopping.terminate(holder.port, holder.pid, info.create_time, send_signal=recorder)
    assert caught.value.status == 403
    assert str(caught.value) == (
        f"not permitted to signal pid {holder.pid} (owned by user {info.user}); "
        "run the console as that user or ask an admin"
    )
    assert len(recorder.calls) == 1
    assert holder.is_running()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_it_refuses_when_the_kernel_says_no(spawn: Callable[..., Holder]) -> None:
    # A real EPERM: a forked copy of this process drops to `nobody` and tries to signal our
    # (root-owned) holder. The holder is our own child, so even a bug could only hit it.
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    holder = spawn()
    create_time = holder.create_time
    snapshot = inventory.snapshot()  # as root: as nobody the holder's pid would be hidden
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the forked copy: must never return into pytest
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            try:
                stopping.terminate(
                    holder.port,
                    holder.pid,
                    create_time,
                    grace_seconds=0,
                    snapshot_fn=lambda: snapshot,
                )
                report = "not refused"
            except errors.ActionError as error:
                report = f"{type(error).__name__} {error.status}: {error}"
            os.write(write_end, report.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        report = pipe.read().decode()
    os.waitpid(child, 0)
    info = inventory.process_info(holder.pid)
    assert info is not None
    assert report == (
        f"Refused 403: not permitted to signal pid {holder.pid} (owned by user {info.user}); "
        "run the console as that user or ask an admin"
    )
    assert holder.is_running()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"signal": "HUP"}, "signal must be one of TERM, KILL"),
        ({"grace_seconds": -1}, "grace_seconds must be between 0 and 60"),
        ({"grace_seconds": 61}, "grace_seconds must be between 0 and 60"),
        ({"port": 0}, "port must be an integer between 1 and 65535"),
        ({"port": 70000}, "port must be an integer between 1 and 65535"),
        ({"create_time": float("nan")}, "create_time must be"),
    ],
)
def test_it_validates_terminate_arguments(kwargs: dict, message: str) -> None:
    recorder = Recorder()
    arguments = {"port": 8000, "pid": 12345, "create_time": 1.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        stopping.terminate(**arguments, snapshot_fn=_must_not_run, send_signal=recorder)
    assert recorder.calls == []


# --- find_free_port ----------------------------------------------------------------------------


@pytest.fixture
def hold() -> Iterator[Callable[..., int]]:
    """Listen on `address` (port chosen by the kernel unless given) for the test's duration."""
    sockets: list[socket.socket] = []

    def listen(address: str = "127.0.0.1", port: int = 0, *, reuseaddr: bool = False) -> int:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sockets.append(sock)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, int(reuseaddr))
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address, port))
        sock.listen()
        return sock.getsockname()[1]

    try:
        yield listen
    finally:
        for sock in sockets:
            sock.close()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_it_finds_a_port_that_can_be_bound() -> None:
    [port] = free_ports.find_free_port(near=20000)
    assert 20000 <= port <= 65535
    assert _bindable(port)


def test_it_skips_a_held_port(hold: Callable[..., int]) -> None:
    held = hold()
    ports = free_ports.find_free_port(near=held, count=3)
    assert held not in ports
    assert ports == sorted(ports) and len(set(ports)) == 3
    assert all(port > held for port in ports)


@pytest.mark.parametrize(
    ("address", "reuseaddr"),
    [
        pytest.param("0.0.0.0", True, id="wildcard-with-reuseaddr"),
        pytest.param("127.0.0.2", False, id="other-loopback-address"),
        pytest.param("::1", False, id="ipv6-loopback"),
        pytest.param("::", False, id="ipv6-only-wildcard"),
    ],
)
def test_it_skips_a_port_held_on_another_address(
    hold: Callable[..., int], address: str, reuseaddr: bool
) -> None:
    # A bind test on 127.0.0.1 alone passes for the last three on Linux.
    if ":" in address and not _ipv6_loopback():
        pytest.skip("no IPv6 on this machine")
    held = hold(address, reuseaddr=reuseaddr)
    assert held not in free_ports.find_free_port(near=held, host="127.0.0.1")


def test_it_honours_exclude() -> None:
    [first] = free_ports.find_free_port(near=21000)
    [second] = free_ports.find_free_port(near=first, exclude=[first])
    assert second > first
    assert free_ports.find_free_port(near=first, exclude={first, second})[0] > second


def test_it_stays_above_1023_unless_allowed() -> None:
    assert free_ports.find_free_port(near=80)[0] >= 1024
    if os.geteuid() == 0:
        assert free_ports.find_free_port(near=1000, allow_privileged=True)[0] >= 1000


def test_it_accepts_localhost_and_ipv6_hosts() -> None:
    assert free_ports.find_free_port(near=22000, host="localhost")[0] >= 22000
    if _ipv6_loopback():
        assert free_ports.find_free_port(near=22000, host="::1")[0] >= 22000


def test_it_raises_when_no_port_is_free() -> None:
    with pytest.raises(errors.NoFreePort, match="no free port between 65530 and 65535") as caught:
        free_ports.find_free_port(near=65530, exclude=range(65530, 65536))
    assert isinstance(caught.value, errors.ActionError)
    assert caught.value.status == 409


def test_it_rejects_a_host_that_is_not_ours() -> None:
    with pytest.raises(ValueError, match="not an address of this machine"):
        free_ports.find_free_port(host="198.51.100.7")  # TEST-NET-2: bound to nothing here


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"near": 0}, "near must be an integer between 1 and 65535"),
        ({"near": 65536}, "near must be an integer between 1 and 65535"),
        ({"near": "8000"}, "near must be an integer"),
        ({"count": 0}, "count must be an integer between 1 and 100"),
        ({"count": 101}, "count must be an integer between 1 and 100"),
        ({"host": "example.com"}, "host must be an IP address or 'localhost'"),
        ({"host": ""}, "host must be an IP address or 'localhost'"),
    ],
)
def test_it_validates_find_free_port_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        free_ports.find_free_port(**kwargs)
