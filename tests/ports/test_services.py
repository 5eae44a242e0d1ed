"""Service hints: pure functions of port, protocol, process name, command line and platform."""

from __future__ import annotations

import pytest

from ports.inventory.hints import AIRPLAY_RECEIVER, service_hint


@pytest.mark.parametrize(
    ("port", "hint"),
    [
        (5000, "Flask"),
        (8000, "Django/uvicorn/http.server"),
        (3000, "Node.js dev server"),
        (5173, "Vite dev server"),
        (8888, "Jupyter"),
        (8501, "Streamlit"),
        (8050, "Dash"),
        (5432, "PostgreSQL"),
        (3306, "MySQL/MariaDB"),
        (6379, "Redis"),
        (5672, "RabbitMQ"),
        (15672, "RabbitMQ management"),
        (1883, "MQTT (Mosquitto)"),
        (4222, "NATS"),
        (27017, "MongoDB"),
        (9200, "Elasticsearch"),
        (11211, "memcached"),
        (22, "SSH"),
        (53, "DNS"),
    ],
)
def test_it_knows_well_known_ports(port, hint):
    assert service_hint(port, "tcp") == hint


def test_it_knows_udp_ports_apart_from_tcp_ports():
    assert service_hint(53, "udp") == "DNS"
    assert service_hint(5353, "udp") == "mDNS"
    assert service_hint(5353, "tcp") is None
    assert service_hint(8000, "udp") is None  # no Django over UDP


def test_it_says_nothing_for_an_unknown_port_and_process():
    assert service_hint(43117, "tcp", "python3", "python3 app.py") is None


@pytest.mark.parametrize(
    ("name", "cmdline", "hint"),
    [
        ("python3", "/usr/bin/python3 manage.py runserver 0.0.0.0:8000", "Django dev server"),
        ("python", "python ./manage.py runserver", "Django dev server"),
        ("flask", "/venv/bin/python /venv/bin/flask run --port 8000", "Flask"),
        ("python3", "python3 -m flask --app hello run", "Flask"),
        ("uvicorn", "/venv/bin/python /venv/bin/uvicorn app:app --port 8000", "uvicorn (ASGI)"),
        ("fastapi", "/venv/bin/python /venv/bin/fastapi dev main.py", "FastAPI (uvicorn)"),
        ("fastapi", "/venv/bin/python /venv/bin/fastapi run main.py", "FastAPI (uvicorn)"),
        ("gunicorn", "/venv/bin/python /venv/bin/gunicorn -w 4 app:wsgi", "gunicorn"),
        ("python3", "python3 -m http.server 8000", "Python http.server"),
        ("node", "node /srv/app/node_modules/.bin/vite --port 5173", "Vite dev server"),
        ("python3", "/venv/bin/python /venv/bin/jupyter-lab --no-browser", "Jupyter"),
        ("python3", "/venv/bin/python -m streamlit run app.py", "Streamlit"),
        ("postgres", "/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql", "PostgreSQL"),
        ("redis-server", "redis-server 127.0.0.1:6379", "Redis"),
        ("mariadbd", "/usr/sbin/mariadbd", "MariaDB"),
        ("nats-server", "/usr/sbin/nats-server -a 127.0.0.1 -p 4222", "NATS"),
        ("mosquitto", "mosquitto -d -c /etc/mosquitto/mosquitto.conf", "MQTT (Mosquitto)"),
        ("beam.smp", "/usr/lib/erlang/bin/beam.smp -W w -- -boot start_sasl -s rabbit", "RabbitMQ"),
    ],
)
def test_it_recognises_the_command_line(name, cmdline, hint):
    assert service_hint(43117, "tcp", name, cmdline) == hint


def test_it_prefers_the_command_line_over_the_port():
    flask_on_8000 = service_hint(8000, "tcp", "flask", "/venv/bin/flask run --port 8000")
    assert flask_on_8000 == "Flask"
    django_on_5000 = service_hint(5000, "tcp", "python", "python manage.py runserver 5000")
    assert django_on_5000 == "Django dev server"


def test_it_lets_the_port_refine_the_same_product():
    rabbit = ("beam.smp", "/usr/lib/erlang/bin/beam.smp -- -s rabbit boot")
    assert service_hint(15672, "tcp", *rabbit) == "RabbitMQ management"
    assert service_hint(25672, "tcp", *rabbit) == "RabbitMQ (Erlang distribution)"
    assert service_hint(5672, "tcp", *rabbit) == "RabbitMQ"


def test_it_matches_daemons_by_program_name_not_by_any_path():
    # "postgres" in a path of a node app is not PostgreSQL.
    assert service_hint(43117, "tcp", "node", "node /srv/postgres-admin/server.js") == "Node.js"
    # A retitled PostgreSQL backend still names its program first.
    assert service_hint(5432, "tcp", "postgres", "postgres: checkpointer") == "PostgreSQL"


def test_it_falls_back_to_the_runtime_name():
    assert service_hint(43117, "tcp", "node", "node server.js") == "Node.js"
    assert service_hint(3000, "tcp", "node", "node server.js") == "Node.js dev server"


CONTROL_CENTER = "/System/Library/CoreServices/ControlCenter.app/Contents/MacOS/ControlCenter"


@pytest.mark.parametrize("port", [5000, 7000])
def test_it_names_airplay_receiver_on_macos(port):
    hint = service_hint(port, "tcp", "ControlCenter", CONTROL_CENTER, platform="darwin")
    assert hint == AIRPLAY_RECEIVER
    assert "System Settings > General > AirDrop & Handoff" in hint


def test_it_names_airplay_receiver_only_on_macos_and_only_for_control_center():
    assert service_hint(5000, "tcp", "ControlCenter", CONTROL_CENTER, platform="linux") == "Flask"
    assert service_hint(5000, "tcp", "python3", "python3 app.py", platform="darwin") == "Flask"
    assert service_hint(8000, "tcp", "ControlCenter", CONTROL_CENTER, platform="darwin") == (
        "Django/uvicorn/http.server"
    )
