"""`manage.py serve`: migrate, make sure someone can sign in, and serve through uvicorn.

Host and port resolve as flag > environment (CONSOLE_HOST / CONSOLE_PORT) > config file
(CONSOLE_CONFIG, TOML with `host` and `port`) > 127.0.0.1:8000. We bind the socket ourselves and
hand it to uvicorn: a taken port is then reported in our words, with its holder, and there is no
gap between the check and the bind for another process to slip into.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import signal
import socket
import tomllib
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from console.foundation.limits import PORT_MAX, PORT_MIN
from console.security.first_run import account_needing_link, browser_host, sign_in_url

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


def _reserved_ports() -> set[int]:
    """Ports the project registry reserves, never offered as "the next free port".

    On a first run the tables do not exist yet (migrations run after the bind): nothing reserved.
    """
    from django.db import DatabaseError

    from ports.registry.operations import reserved_ports

    try:
        return set(reserved_ports())
    except DatabaseError:
        return set()


def describe_holder(port: int) -> str:
    """Why our bind (with SO_REUSEADDR) got EADDRINUSE, in one line."""
    from ports import inventory
    from ports.inventory.diagnosis import TIME_WAIT_SECONDS, time_wait_on

    for listener in inventory.snapshot().on_port(port):
        if listener.proto != "tcp":
            continue
        if listener.process:
            return (
                f"port {port} is held by {listener.process.name} (pid {listener.pid}): "
                f"{listener.process.cmdline}"
            )
        return f"port {port} is held by a process of uid {listener.uid} that this user cannot see"
    waiting = time_wait_on(port)
    if waiting.connections:
        # SO_REUSEADDR binds over TIME_WAIT only when the server that left it had set it too.
        closed = (
            "1 closed connection is"
            if waiting.connections == 1
            else f"{waiting.connections} closed connections are"
        )
        return (
            f"port {port} is in TIME_WAIT: nothing listens, but {closed} left for "
            f"{waiting.left()} more (TIME_WAIT lasts {TIME_WAIT_SECONDS} s on Linux); the server "
            "that left the TIME_WAIT did not set SO_REUSEADDR, so no server can bind the port "
            "before then, not even this one (which sets it)"
        )
    return (
        f"port {port} is in use, though nothing listens on it: a socket bound without "
        "listening, or outgoing connections from it"
    )


class Command(BaseCommand):
    help = "Serve the Portside console (migrates first; prints a sign-in link on first run)."

    def add_arguments(self, parser):
        parser.add_argument("--host", help="bind address (default 127.0.0.1)")
        parser.add_argument("--port", help="port number, or 'auto' for the next free one")
        parser.add_argument("--no-migrate", action="store_true", help="skip migrations")
        parser.add_argument("--log-level", default="info")
        parser.add_argument(
            "--lan",
            action="store_true",
            help="share on the LAN: bind 0.0.0.0 and ::, allow this machine's addresses",
        )
        parser.add_argument("--tls", action="store_true", help="serve HTTPS")
        parser.add_argument("--cert", help="certificate (PEM) for --tls; default: self-signed")
        parser.add_argument("--key", help="private key (PEM) for --cert")
        parser.add_argument(
            "--allow-root", action="store_true", help="run as root anyway (containers, CI)"
        )

    def handle(self, *args, host, port, no_migrate, log_level, **options):
        import uvicorn

        from console.server import QuietServer
        from ports.free_ports import find_free_port

        if hasattr(os, "geteuid") and os.geteuid() == 0 and not options["allow_root"]:
            raise CommandError(
                "Refusing to run as root. Portside signals processes and talks to local "
                "services; as root a mistake (or a flaw) could stop any process on this machine. "
                "Run it as your own user, or pass --allow-root where everything runs as root "
                "(a container, CI)."
            )
        if (options["cert"] or options["key"]) and not (options["cert"] and options["key"]):
            raise CommandError("--cert and --key go together")
        host_source = (
            "--host" if host else ("CONSOLE_HOST" if os.environ.get("CONSOLE_HOST") else "default")
        )
        if options["lan"]:
            host, host_source = host or "0.0.0.0", "--lan"

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
        if not PORT_MIN <= number <= PORT_MAX:
            raise CommandError(f"{source}: port {number} is outside {PORT_MIN}-{PORT_MAX}")

        try:
            sock = bind_socket(host, number)
        except OSError as error:
            if error.errno not in (errno.EADDRINUSE, errno.EACCES):
                raise CommandError(f"cannot bind {host}:{number}: {error.strerror}") from error
            free = find_free_port(number + 1, host=host, exclude=_reserved_ports())[0]
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

        sockets = [sock]
        tls = options["tls"] or bool(options["cert"])
        lan_names = self._configure_lan(number, sockets) if options["lan"] else []
        ssl_options = self._configure_tls(options, lan_names) if tls else {}
        scheme = "https" if tls else "http"
        base_url = f"{scheme}://{browser_host(host)}:{number}"
        os.environ["CONSOLE_BOUND"] = f"{host}:{number}"
        os.environ["CONSOLE_BIND_SOURCE"] = host_source
        self.stdout.write(self.style.SUCCESS(f"Portside is serving at {base_url}/"))
        for name in lan_names:
            self.stdout.write(f"  on the LAN: {scheme}://{name}:{number}/")
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
            **ssl_options,
            lifespan="on",
            access_log=False,  # RequestTimingMiddleware logs each request with its duration
            log_level=log_level,
            proxy_headers=False,  # nobody sits in front of a local console; never trust XFF
            timeout_graceful_shutdown=5,
        )
        QuietServer(config).run(sockets=sockets)
        self.stdout.write("Portside stopped.")

    def _configure_lan(self, port: int, sockets: list) -> list[str]:
        """Admit this machine's addresses (settings are loaded already: set them and the
        environment, which worker processes would read), bind :: too, and demand an admin."""
        from console.foundation.roles import ADMIN, role_of
        from console.security.lan import bind_ipv6_any, host_names, machine_addresses

        admins = [
            user
            for user in get_user_model().objects.filter(is_active=True)
            if role_of(user) == ADMIN and user.has_usable_password()
        ]
        if not admins:
            raise CommandError(
                "LAN mode needs an admin with a password: everyone on the network could reach "
                "the sign-in page. Run `serve` without --lan, sign in with the printed link, set a "
                "password, then start again with --lan."
            )
        names = host_names(machine_addresses())
        extra = [h for h in os.environ.get("CONSOLE_EXTRA_HOSTS", "").split(",") if h.strip()]
        os.environ["CONSOLE_LAN"] = "1"
        os.environ["CONSOLE_EXTRA_HOSTS"] = ",".join(dict.fromkeys([*extra, *names]))
        settings.LAN_MODE = True
        settings.ALLOWED_HOSTS = list(dict.fromkeys([*settings.ALLOWED_HOSTS, *names]))
        if (v6 := bind_ipv6_any(port)) is not None:
            sockets.append(v6)
        return names

    def _configure_tls(self, options: dict, lan_names: list[str]) -> dict:
        from console.security.lan import fingerprint, self_signed_certificate

        if options["cert"]:
            cert, key = Path(options["cert"]), Path(options["key"])
            for path in (cert, key):
                if not path.is_file():
                    raise CommandError(f"{path}: no such file")
        else:
            addresses = [name.strip("[]") for name in lan_names if _is_address(name.strip("[]"))]
            cert, key, _ = self_signed_certificate(settings.DATA_DIR / "tls", addresses)
            self.stdout.write(
                f"Self-signed certificate {cert}; browsers will warn once. Check its "
                f"SHA-256 fingerprint:\n  {fingerprint(cert)}"
            )
        os.environ["CONSOLE_TLS"] = "1"
        settings.CONSOLE_TLS = True
        settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
        return {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _exit_cleanly(signum, frame) -> None:
    raise SystemExit(0)
