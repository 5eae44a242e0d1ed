"""What probably listens on a port: a hint from the process's command line, else from the port.

Pure functions of their arguments (the platform included) so every rule is testable anywhere.
The command line wins over the port: a Flask app started on 8000 is Flask, not Django. When both
name the same product, the port may add detail (RabbitMQ on 15672 is its management UI).
"""

from __future__ import annotations

import functools
import os
import re
import sys

AIRPLAY_RECEIVER = "AirPlay Receiver (turn it off in System Settings > General > AirDrop & Handoff)"

# (proto or None for both, port) -> hint
_PORTS: dict[tuple[str | None, int], str] = {
    (None, 22): "SSH",
    (None, 53): "DNS",
    ("tcp", 80): "HTTP",
    ("udp", 123): "NTP",
    ("tcp", 443): "HTTPS",
    ("tcp", 631): "CUPS (printing)",
    ("tcp", 1433): "SQL Server",
    ("tcp", 1883): "MQTT (Mosquitto)",
    ("tcp", 2181): "ZooKeeper",
    ("tcp", 2375): "Docker API",
    ("tcp", 3000): "Node.js dev server",
    ("tcp", 3306): "MySQL/MariaDB",
    ("tcp", 4200): "Angular dev server",
    ("tcp", 4222): "NATS",
    ("tcp", 4369): "Erlang port mapper (epmd)",
    ("tcp", 5000): "Flask",
    ("tcp", 5173): "Vite dev server",
    ("udp", 5353): "mDNS",
    ("tcp", 5432): "PostgreSQL",
    ("tcp", 5601): "Kibana",
    ("tcp", 5672): "RabbitMQ",
    ("tcp", 5984): "CouchDB",
    ("tcp", 6006): "TensorBoard",
    ("tcp", 6222): "NATS cluster",
    ("tcp", 6379): "Redis",
    ("tcp", 6443): "Kubernetes API",
    ("tcp", 7474): "Neo4j",
    ("tcp", 8000): "Django/uvicorn/http.server",
    ("tcp", 8050): "Dash",
    ("tcp", 8080): "HTTP (alternate)",
    ("tcp", 8086): "InfluxDB",
    ("tcp", 8222): "NATS monitoring",
    ("tcp", 8501): "Streamlit",
    ("tcp", 8888): "Jupyter",
    ("tcp", 8983): "Solr",
    ("tcp", 9042): "Cassandra",
    ("tcp", 9090): "Prometheus",
    ("tcp", 9092): "Kafka",
    ("tcp", 9200): "Elasticsearch",
    ("tcp", 9300): "Elasticsearch transport",
    ("tcp", 11211): "memcached",
    ("udp", 11211): "memcached",
    ("tcp", 11434): "Ollama",
    ("tcp", 15672): "RabbitMQ management",
    ("tcp", 25672): "RabbitMQ (Erlang distribution)",
    ("tcp", 27017): "MongoDB",
}

# Ordered rules, first match wins: specific tools before the generic runtimes that run them
# (uvicorn before python, vite before node). "cmd" rules search the whole command line (tools run
# by an interpreter); "name" rules match the program's own name only, so a daemon's name found
# in some unrelated path ("/srv/postgres-admin/app.js") does not count.
_RULES: list[tuple[str, re.Pattern[str], str]] = [
    (target, re.compile(pattern, re.IGNORECASE), hint)
    for target, pattern, hint in [
        ("cmd", r"manage\.py\s+runserver|django-admin\s+runserver", "Django dev server"),
        ("cmd", r"\bdaphne\b", "Daphne (ASGI)"),
        ("cmd", r"\bfastapi\s+(dev|run)\b", "FastAPI (uvicorn)"),
        ("cmd", r"\buvicorn\b", "uvicorn (ASGI)"),
        ("cmd", r"\bhypercorn\b", "Hypercorn (ASGI)"),
        ("cmd", r"\bgunicorn\b", "gunicorn"),
        ("cmd", r"\bwaitress-serve\b", "waitress"),
        ("cmd", r"\bflask\b.*\srun\b|-m\s+flask\b", "Flask"),
        ("cmd", r"\bhttp\.server\b|\bSimpleHTTPServer\b", "Python http.server"),
        ("cmd", r"\bstreamlit\b", "Streamlit"),
        ("cmd", r"\bipykernel", "Jupyter kernel"),
        ("cmd", r"\bjupyter", "Jupyter"),
        ("cmd", r"\btensorboard\b", "TensorBoard"),
        ("cmd", r"\bmkdocs\s+serve\b", "MkDocs dev server"),
        ("cmd", r"\bvite\b", "Vite dev server"),
        ("cmd", r"\bnext(-server|\s+dev|\s+start)\b", "Next.js"),
        ("cmd", r"\bnuxt\b", "Nuxt"),
        ("cmd", r"webpack(-dev-server|\s+serve)", "webpack dev server"),
        ("cmd", r"\bng\s+serve\b", "Angular dev server"),
        ("cmd", r"\bastro\s+dev\b", "Astro dev server"),
        ("cmd", r"\bhugo\s+server\b", "Hugo dev server"),
        ("cmd", r"\brails\s+s(erver)?\b|\bpuma\b", "Rails (Puma)"),
        ("cmd", r"\bphp\b.*\s-S\s", "PHP built-in server"),
        ("cmd", r"\bbeam\.smp\b.*\brabbit", "RabbitMQ"),
        ("cmd", r"org\.elasticsearch\.", "Elasticsearch"),
        ("cmd", r"org\.opensearch\.", "OpenSearch"),
        ("name", r"postgres|postmaster", "PostgreSQL"),
        ("name", r"redis-server", "Redis"),
        ("name", r"valkey-server", "Valkey"),
        ("name", r"mariadbd|mariadb", "MariaDB"),
        ("name", r"mysqld", "MySQL"),
        ("name", r"rabbitmq-server", "RabbitMQ"),
        ("name", r"epmd", "Erlang port mapper (epmd)"),
        ("name", r"nats-server", "NATS"),
        ("name", r"mosquitto", "MQTT (Mosquitto)"),
        ("name", r"mongod", "MongoDB"),
        ("name", r"memcached", "memcached"),
        ("name", r"sshd", "SSH"),
        ("name", r"nginx", "nginx"),
        ("name", r"httpd|apache2", "Apache httpd"),
        ("name", r"caddy", "Caddy"),
        ("name", r"dnsmasq", "DNS (dnsmasq)"),
        ("name", r"systemd-resolve|systemd-resolved", "DNS (systemd-resolved)"),
        ("name", r"avahi-daemon|mDNSResponder", "mDNS"),
        ("name", r"cupsd", "CUPS (printing)"),
        ("name", r"docker-proxy", "Docker published port"),
        ("name", r"ollama", "Ollama"),
        ("name", r"minio", "MinIO"),
    ]
]

# Runtimes that say little by themselves: only a fallback when neither the command nor the port
# gives anything better.
_RUNTIMES: dict[str, str] = {"node": "Node.js", "deno": "Deno", "bun": "Bun"}


def service_hint(
    port: int,
    proto: str = "tcp",
    name: str = "",
    cmdline: str = "",
    platform: str = sys.platform,
) -> str | None:
    """A short label for what probably serves `port`, or None when nothing suggests one."""
    if platform == "darwin" and proto == "tcp" and port in (5000, 7000) and name == "ControlCenter":
        # macOS Monterey and later: AirPlay Receiver takes 5000/7000, a classic Flask surprise.
        return AIRPLAY_RECEIVER

    by_port = _PORTS.get((proto, port)) or _PORTS.get((None, port))
    by_command = _from_command(name, cmdline)
    if by_command is not None:
        # The port refines a matching product ("RabbitMQ" on 15672 -> "RabbitMQ management").
        if by_port is not None and by_port != by_command and by_port.startswith(by_command):
            return by_port
        return by_command
    if by_port is not None:
        return by_port
    return _RUNTIMES.get(os.path.basename(name).lower())


def command_hint(name: str, cmdline: str) -> str | None:
    """The hint from a process's own name and command line alone (no port), or None."""
    return _from_command(name, cmdline)


@functools.lru_cache(maxsize=4096)
def _from_command(name: str, cmdline: str) -> str | None:
    # Cached: dozens of regexes over a 500-character command line add up over 1,000 listeners,
    # and a process's command line rarely changes.
    argv0 = cmdline.split(" ", 1)[0]
    # "postgres: checkpointer" (a retitled process) and "/usr/sbin/nginx" both name the program.
    names = {name, os.path.basename(argv0).rstrip(":")}
    names.discard("")
    for target, pattern, hint in _RULES:
        if target == "cmd":
            if cmdline and pattern.search(cmdline):
                return hint
        elif any(pattern.fullmatch(candidate) for candidate in names):
            return hint
    return None
