"""`manage.py serve`: migrate, make sure someone can sign in, and serve through uvicorn.

Host and port resolve as flag > environment (CONSOLE_HOST / CONSOLE_PORT) > config file
(CONSOLE_CONFIG, TOML with `host` and `port`) > 127.0.0.1:8000. We bind the socket ourselves and
hand it to uvicorn: a taken port is then reported in our words, with its holder, and there is no
gap between the check and the bind for another process to slip into.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import tomllib

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from console.first_run import account_needing_link, browser_host, sign_in_url

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000


def _config_file() -> dict:
    path = settings.CONSOLE_CONFIG_FILE
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise CommandError(f"cannot read {path}: {error}") from error


def resolve_bind(flag_host: str | None, flag_port: str | None) -> tuple[str, str, str, bool]:
    """(host, port, where the port came from, auto).

    `auto` may stand at any level: the port then comes from the levels below it (or the
    default), and a taken one is replaced by the next free port instead of being an error.
    """
    config = _config_file()
    host = flag_host or os.environ.get("CONSOLE_HOST") or config.get("host") or DEFAULT_HOST
    auto = False
    for source, value in (
        ("--port", flag_port),
        ("CONSOLE_PORT", os.environ.get("CONSOLE_PORT")),
        (str(settings.CONSOLE_CONFIG_FILE), config.get("port")),
    ):
        if value in (None, ""):
            continue
        if str(value).strip().lower() == "auto":
            auto = True
            continue
        return str(host), str(value).strip(), source, auto
    return str(host), str(DEFAULT_PORT), "default", auto


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # As uvicorn does: restarting right after a stop must not wait out TIME_WAIT.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def describe_holder(port: int) -> str:
    from ports import inventory

    for listener in inventory.snapshot().on_port(port):
        if listener.proto != "tcp":
            continue
        if listener.process:
            return (
                f"port {port} is held by {listener.process.name} (pid {listener.pid}): "
                f"{listener.process.cmdline}"
            )
        return f"port {port} is held by a process of uid {listener.uid} that this user cannot see"
    return f"port {port} is in use"


class Command(BaseCommand):
    help = "Serve the Portside console (migrates first; prints a sign-in link on first run)."

    def add_arguments(self, parser):
        parser.add_argument("--host", help="bind address (default 127.0.0.1)")
        parser.add_argument("--port", help="port number, or 'auto' for the next free one")
        parser.add_argument("--no-migrate", action="store_true", help="skip migrations")
        parser.add_argument("--log-level", default="info")

    def handle(self, *args, host, port, no_migrate, log_level, **options):
        import uvicorn

        from ports.actions import find_free_port

        # A stop requested while starting, or the signal uvicorn re-raises after its graceful
        # shutdown, ends the process with status 0: the stop was asked for and was clean.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _exit_cleanly)
        host, wanted, source, auto = resolve_bind(host, port)
        try:
            number = int(wanted)
        except ValueError:
            raise CommandError(
                f"{source}: port must be a number or 'auto', not {wanted!r}"
            ) from None
        if not 1 <= number <= 65535:
            raise CommandError(f"{source}: port {number} is outside 1-65535")

        try:
            sock = bind_socket(host, number)
        except OSError as error:
            if error.errno not in (errno.EADDRINUSE, errno.EACCES):
                raise CommandError(f"cannot bind {host}:{number}: {error.strerror}") from error
            free = find_free_port(number + 1, host=host)[0]
            if not auto:
                reason = (
                    describe_holder(number)
                    if error.errno == errno.EADDRINUSE
                    else f"port {number} needs privileges"
                )
                raise CommandError(
                    f"{reason}\nThe next free port is {free}: run with --port {free} "
                    "or --port auto."
                ) from None
            number, sock = free, bind_socket(host, free)

        if not no_migrate:
            call_command("migrate", interactive=False, verbosity=0)

        base_url = f"http://{browser_host(host)}:{number}"
        os.environ["CONSOLE_BOUND"] = f"{host}:{number}"
        self.stdout.write(self.style.SUCCESS(f"Portside is serving at {base_url}/"))
        user, created = account_needing_link()
        if user is not None:
            if created:
                self.stdout.write(f"First run: created the account '{user.get_username()}'.")
            self.stdout.write(
                "Sign in within 15 minutes with this one-time link, then set a password:\n"
                f"  {sign_in_url(base_url, user)}"
            )
        self.stdout.flush()

        config = uvicorn.Config(
            "console.asgi:application",
            lifespan="on",
            access_log=False,  # RequestTimingMiddleware logs each request with its duration
            log_level=log_level,
            proxy_headers=False,  # nobody sits in front of a local console; never trust XFF
            timeout_graceful_shutdown=5,
        )
        uvicorn.Server(config).run(sockets=[sock])
        self.stdout.write("Portside stopped.")


def _exit_cleanly(signum, frame) -> None:
    raise SystemExit(0)
