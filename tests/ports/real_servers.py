"""Real dev servers for the server-tree tests: start one on a loopback port, wait, stop it whole.

    with running("gunicorn-w3", port, tmp_path=tmp_path) as server:
        server.wait_listening()
        ... server.root_pid, server.tree() ...

Each kind is the command a developer types (`gunicorn -w 3 ...`, `flask --app app run --debug`,
`manage.py runserver`, `uvicorn --reload`, `npm exec vite`), run from the venv's own scripts on a
tiny app written into tmp_path. By default the server starts in a new session, as a shell starts
a job: its root leads its own process group, and stopping it signals that group. With
`new_session=False` it stays in the caller's group, as a server started by an IDE or a script
would, and is stopped by pid.

Nothing here signals a process it did not start: the group it created (while its leader is
still unreaped, so the id cannot have been reused), and descendants of the server it started,
each by pid and only while its start time still matches.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
VITE_FIXTURE = REPO / "tests" / "fixtures" / "vite"

LISTEN_DEADLINE_S = 30.0
STOP_GRACE_S = 15.0
POLL_S = 0.02

KINDS = (
    "gunicorn-w3",
    "gunicorn-w1",
    "flask-debug",
    "flask-app-run",
    "django-runserver",
    "uvicorn-reload",
    "uvicorn-workers",
    "forking",
    "vite",
)

WSGI_APP = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok\\n"]
"""

FLASK_APP = """
from flask import Flask

app = Flask(__name__)


@app.get("/")
def index():
    return "ok\\n"
"""

# `python app_run.py PORT`: Flask's own app.run(debug=True), the reloader included.
FLASK_APP_RUN = (
    FLASK_APP
    + """

if __name__ == "__main__":
    import sys

    app.run(host="127.0.0.1", port=int(sys.argv[1]), debug=True)
"""
)

ASGI_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok\\n"})
"""

# `python forking.py PORT`: a fork per connection; each child holds the listening socket too
# (socketserver's child does not close it) until it answered or its client went away.
FORKING_SERVER = """
import socketserver, sys


class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline()
        self.wfile.write(b"ok " + line)


class Server(socketserver.ForkingTCPServer):
    allow_reuse_address = True


with Server(("127.0.0.1", int(sys.argv[1])), Echo) as server:
    print("forking server listening", flush=True)
    server.serve_forever()
"""

DJANGO_SETTINGS = """
SECRET_KEY = "real-server-test-only"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "site_urls"
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
"""

DJANGO_URLS = """
from django.http import HttpResponse
from django.urls import path

urlpatterns = [path("", lambda request: HttpResponse("ok\\n"))]
"""

DJANGO_MANAGE = """
import os, sys

os.environ["DJANGO_SETTINGS_MODULE"] = "site_settings"
from django.core.management import execute_from_command_line

execute_from_command_line(sys.argv)
"""


@dataclass(frozen=True)
class TreeProcess:
    """One process of a running server's tree, read from /proc."""

    pid: int
    ppid: int
    pgid: int
    sid: int
    comm: str
    cmdline: str
    start_ticks: int
    state: str  # "S", "R", ... "Z" for a zombie: exited, its fds closed, not yet reaped


@dataclass
class RunningServer:
    kind: str
    port: int
    popen: subprocess.Popen[bytes]
    new_session: bool
    log_path: Path
    started_at: float  # time.time() just before Popen
    # Every descendant ever seen by tree(), by (pid, start ticks): stop() ends the ones left.
    _seen: dict[int, int] = field(default_factory=dict)

    @property
    def root_pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_listening(self, timeout: float = LISTEN_DEADLINE_S) -> None:
        """Returns once a LISTEN socket is on the port; fails with the server's log otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if listening_inodes(self.port):
                self.tree()  # remember the processes while they are all there
                return
            if self.popen.poll() is not None:
                pytest.fail(
                    f"{self.kind} exited with {self.popen.returncode} before it listened on "
                    f"{self.port}:\n{self.log()[-3000:]}"
                )
            time.sleep(POLL_S)
        pytest.fail(
            f"{self.kind} did not listen on {self.port} within {timeout:.0f} s:\n"
            f"{self.log()[-3000:]}"
        )

    def tree(self) -> list[TreeProcess]:
        """The root and its living descendants, root first, parents before their children."""
        tree = process_tree(self.root_pid)
        for proc in tree:
            self._seen.setdefault(proc.pid, proc.start_ticks)
        return tree

    def holders(self) -> set[int]:
        """The pids (of any process) holding a listening socket on the port right now."""
        return socket_holders(listening_inodes(self.port))

    def stop(self, grace: float = STOP_GRACE_S) -> int:
        """SIGTERM the group (or the root), SIGKILL after `grace`; end leftovers; reap.

        Returns the root's exit status (negative: the signal that ended it).
        """
        if self.popen.poll() is None:
            self.tree()
            self._signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
        # The root is a zombie or reaped by now; the group id is still ours while the zombie
        # stands, so the group is signalled before the reap (a leftover worker, say).
        if self.new_session:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.root_pid, signal.SIGKILL)
        status = self.popen.wait(timeout=30)
        self._end_leftovers()
        return status

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            if self.new_session:
                os.killpg(self.root_pid, signum)
            else:
                os.kill(self.root_pid, signum)

    def _end_leftovers(self) -> None:
        """SIGKILL every descendant seen earlier that is still the same process."""
        deadline = time.monotonic() + 10
        alive = dict(self._seen)
        alive.pop(self.root_pid, None)
        while alive and time.monotonic() < deadline:
            for pid, ticks in list(alive.items()):
                proc = read_process(pid)
                # A zombie is done (an orphan waits for its new parent to reap it).
                if proc is None or proc.start_ticks != ticks or proc.state == "Z":
                    del alive[pid]
                    continue
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(POLL_S)


# -- the kinds -----------------------------------------------------------------------------------


def _venv_script(name: str) -> str:
    return str(VENV_BIN / name)


def _gunicorn(workers: int) -> Callable[[Path, int], list[str]]:
    def command(app_dir: Path, port: int) -> list[str]:
        (app_dir / "wsgi_app.py").write_text(WSGI_APP)
        return [
            _venv_script("gunicorn"),
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{port}",
            "--chdir",
            str(app_dir),
            "wsgi_app:app",
        ]

    return command


def _flask_debug(app_dir: Path, port: int) -> list[str]:
    (app_dir / "app.py").write_text(FLASK_APP)
    return [_venv_script("flask"), "--app", "app", "run", "--debug", "-p", str(port)]


def _flask_app_run(app_dir: Path, port: int) -> list[str]:
    (app_dir / "app_run.py").write_text(FLASK_APP_RUN)
    return [sys.executable, "app_run.py", str(port)]


def _django_runserver(app_dir: Path, port: int) -> list[str]:
    (app_dir / "site_settings.py").write_text(DJANGO_SETTINGS)
    (app_dir / "site_urls.py").write_text(DJANGO_URLS)
    (app_dir / "manage.py").write_text(DJANGO_MANAGE)
    return [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"]


def _uvicorn(*flags: str) -> Callable[[Path, int], list[str]]:
    def command(app_dir: Path, port: int) -> list[str]:
        (app_dir / "asgi_app.py").write_text(ASGI_APP)
        return [
            _venv_script("uvicorn"),
            "asgi_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *flags,
        ]

    return command


def _forking(app_dir: Path, port: int) -> list[str]:
    (app_dir / "forking.py").write_text(FORKING_SERVER)
    return [sys.executable, "forking.py", str(port)]


def _vite(app_dir: Path, port: int) -> list[str]:
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("Vite needs npm, and npm is not on PATH")
    if not (VITE_FIXTURE / "node_modules" / ".bin" / "vite").exists():
        pytest.skip(f"Vite is not installed: run `npm ci` in {VITE_FIXTURE.relative_to(REPO)}")
    (app_dir / "index.html").write_text((VITE_FIXTURE / "index.html").read_text())
    # npm exec runs the fixture's own vite (cwd), through `sh -c vite`, as `npm exec` does;
    # the root is app_dir so Vite's dep cache and watcher stay in the test's tmp dir.
    return [
        npm,
        "exec",
        "vite",
        "--",
        str(app_dir),
        "--port",
        str(port),
        "--strictPort",
        "--host",
        "127.0.0.1",
        "--clearScreen",
        "false",
    ]


COMMANDS: dict[str, Callable[[Path, int], list[str]]] = {
    "gunicorn-w3": _gunicorn(3),
    "gunicorn-w1": _gunicorn(1),
    "flask-debug": _flask_debug,
    "flask-app-run": _flask_app_run,
    "django-runserver": _django_runserver,
    "uvicorn-reload": _uvicorn("--reload"),
    "uvicorn-workers": _uvicorn("--workers", "2"),
    "forking": _forking,
    "vite": _vite,
}
assert set(COMMANDS) == set(KINDS)


def _environment(app_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    # The test run's own Django settings must not leak into the servers (pytest-django sets it).
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("WERKZEUG_SERVER_FD", None)
    env.pop("WERKZEUG_RUN_MAIN", None)
    env.pop("RUN_MAIN", None)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONPATH"] = str(app_dir)
    env["npm_config_update_notifier"] = "false"
    env["npm_config_fund"] = "false"
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


# Runs as the root's first program and execs the server in the same process: the kernel then
# SIGKILLs the root if the thread that started it dies (PR_SET_PDEATHSIG survives exec), so a
# crashed test run leaves no server behind. A preexec_fn would do the same but is unsafe while
# the test process runs threads (the sampler's, the database's).
EXEC_DYING_WITH_PARENT = (
    "import ctypes, os, sys; ctypes.CDLL(None).prctl(1, 9); "
    "os.getppid() == int(sys.argv[1]) or sys.exit(1); os.execv(sys.argv[2], sys.argv[2:])"
)


@contextlib.contextmanager
def running(
    kind: str, port: int, *, new_session: bool = True, tmp_path: Path
) -> Iterator[RunningServer]:
    """Starts `kind` on 127.0.0.1:port and stops it whole on exit (the caller waits for it)."""
    if kind not in COMMANDS:
        raise ValueError(f"unknown server kind {kind!r}; one of {KINDS}")
    app_dir = tmp_path / f"{kind}-{port}"
    app_dir.mkdir(parents=True, exist_ok=True)
    argv = COMMANDS[kind](app_dir, port)
    cwd = VITE_FIXTURE if kind == "vite" else app_dir
    log_path = app_dir / "server.log"
    with open(log_path, "wb") as log:
        started_at = time.time()
        popen = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", EXEC_DYING_WITH_PARENT, str(os.getpid()), *argv],
            cwd=cwd,
            env=_environment(app_dir),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,
        )
    server = RunningServer(kind, port, popen, new_session, log_path, started_at)
    try:
        yield server
    finally:
        server.stop()


# -- /proc readers -------------------------------------------------------------------------------


def listening_inodes(port: int) -> set[int]:
    """Inodes of the TCP sockets in LISTEN on `port`, IPv4 and IPv6 (/proc/net/tcp{,6})."""
    wanted = f"{port:04X}"
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as rows:
            next(rows, None)
            for row in rows:
                fields = row.split()
                # local_address is HEXIP:HEXPORT; state 0A is LISTEN.
                if fields[3] == "0A" and fields[1].rsplit(":", 1)[1] == wanted:
                    inodes.add(int(fields[9]))
    return inodes


def socket_holders(inodes: set[int]) -> set[int]:
    """Every pid with an fd on one of `inodes` (a full /proc scan: for tests, not for polling)."""
    if not inodes:
        return set()
    links = {f"socket:[{inode}]" for inode in inodes}
    holders = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fd_dir = f"/proc/{name}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"{fd_dir}/{fd}") in links:
                    holders.add(int(name))
                    break
            except OSError:
                continue
    return holders


def read_process(pid: int) -> TreeProcess | None:
    """pid, ppid, pgid, sid, comm, cmdline and start ticks of one process; None when gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().rstrip(b"\0").split(b"\0")
    except OSError:
        return None
    close = raw.rfind(b")")
    fields = raw[close + 2 :].split()
    try:
        return TreeProcess(
            pid=pid,
            ppid=int(fields[1]),
            pgid=int(fields[2]),
            sid=int(fields[3]),
            comm=raw[raw.find(b"(") + 1 : close].decode(errors="replace"),
            cmdline=" ".join(arg.decode(errors="replace") for arg in argv),
            start_ticks=int(fields[19]),
            state=fields[0].decode(),
        )
    except (IndexError, ValueError):
        return None


def process_tree(root: int) -> list[TreeProcess]:
    """`root` and its living descendants, breadth first."""
    by_parent: dict[int, list[TreeProcess]] = {}
    found: dict[int, TreeProcess] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            proc = read_process(int(name))
            if proc is not None:
                found[proc.pid] = proc
                by_parent.setdefault(proc.ppid, []).append(proc)
    if root not in found:
        return []
    tree = [found[root]]
    for proc in tree:  # grows while iterating: breadth first
        tree.extend(sorted(by_parent.get(proc.pid, []), key=lambda child: child.pid))
    return tree


def ancestors(pid: int) -> list[TreeProcess]:
    """The parent chain of `pid` up to pid 1 (or as far as /proc lets us read), nearest first."""
    chain = []
    proc = read_process(pid)
    while proc is not None and proc.ppid > 0:
        parent = read_process(proc.ppid)
        if parent is None:
            break
        chain.append(parent)
        proc = parent
    return chain


def describe(tree: list[TreeProcess], holders: set[int]) -> str:
    """A table of a tree for failure messages: which process holds the socket."""
    lines = ["  pid   ppid   pgid    sid  state  holds  comm / cmdline"]
    for proc in tree:
        mark = "yes" if proc.pid in holders else ""
        lines.append(
            f"{proc.pid:6} {proc.ppid:6} {proc.pgid:6} {proc.sid:6}  {proc.state:5}  {mark:5}  "
            f"{proc.comm}: {textwrap.shorten(proc.cmdline, 90)}"
        )
    return "\n".join(lines)
