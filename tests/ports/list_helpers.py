"""Listeners for the Ports list's tests: a notebook-like server with kernels, another account's.

Every process here is ended by its own pid (the kernels' pids are printed by their server).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field

# A server that listens, then forks "kernels" that each listen on a port of their own, like
# Jupyter's ipykernels under the notebook server; a line on stdin starts one more kernel.
NOTEBOOK_SCRIPT = textwrap.dedent(
    """
    import os, socket, sys, time

    def kernel():
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            s.close()  # a kernel holds only its own ports
            k = socket.socket(); k.bind(("127.0.0.1", 0)); k.listen()
            os.write(w, str(k.getsockname()[1]).encode().ljust(8))
            while True:
                time.sleep(3600)
        os.close(w)
        port = int(os.read(r, 8)); os.close(r)
        print(port, pid, flush=True)

    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
    print(s.getsockname()[1], os.getpid(), flush=True)
    for _ in range(int(sys.argv[1])):
        kernel()
    for line in sys.stdin:
        kernel()
    time.sleep(3600)
    """
)

# The socket is made after setuid: a socket belongs to the account that created it.
AS_ACCOUNT_SCRIPT = textwrap.dedent(
    """
    import os, socket, sys, time
    os.setgroups([]); os.setgid(int(sys.argv[1])); os.setuid(int(sys.argv[1]))
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
    print(s.getsockname()[1], flush=True)
    while True:
        time.sleep(3600)
    """
)
NOBODY = 65534


@dataclass
class Notebook:
    process: subprocess.Popen
    port: int
    kernels: list[tuple[int, int]] = field(default_factory=list)  # (port, pid)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def ports(self) -> list[int]:
        return [self.port, *(port for port, _pid in self.kernels)]

    def add_kernel(self) -> int:
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        port, pid = map(int, self.process.stdout.readline().split())
        self.kernels.append((port, pid))
        return port

    def stop(self) -> None:
        for pid in [pid for _port, pid in self.kernels] + [self.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # our own processes, by pid
        self.process.wait(timeout=10)


def start_notebook(kernels: int) -> Notebook:
    process = subprocess.Popen(
        [sys.executable, "-c", NOTEBOOK_SCRIPT, str(kernels)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    port, _pid = map(int, process.stdout.readline().split())
    notebook = Notebook(process, port)
    for _ in range(kernels):
        kernel_port, kernel_pid = map(int, process.stdout.readline().split())
        notebook.kernels.append((kernel_port, kernel_pid))
    return notebook


@dataclass
class AccountListener:
    process: subprocess.Popen
    port: int

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)  # our own child, by pid
        self.process.wait(timeout=10)


def listen_as(uid: int = NOBODY) -> AccountListener:
    """A listener of another account (root only: setuid)."""
    process = subprocess.Popen(
        [sys.executable, "-c", AS_ACCOUNT_SCRIPT, str(uid)], stdout=subprocess.PIPE, text=True
    )
    return AccountListener(process, int(process.stdout.readline()))
