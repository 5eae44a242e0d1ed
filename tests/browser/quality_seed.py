"""What the page quality tests look at: a console with listeners, a project, checks up and
down, an alert channel and a viewer, made through the API and manage.py."""

from __future__ import annotations

from ports.free_ports import find_free_port
from tests.browser.conftest import PASSWORD, manage
from tests.conftest import Child, spawn_listener, wait_until

VIEWER = "quality-viewer"

MAKE_VIEWER = (
    "from django.contrib.auth import get_user_model\n"
    "from django.contrib.auth.models import Group\n"
    "user = get_user_model().objects.create_user({name!r}, password={password!r})\n"
    "user.groups.add(Group.objects.get_or_create(name='viewer')[0])\n"
)


class SeedApi:
    """The JSON API as the admin, for seeding; remembers what it made."""

    def __init__(self, console) -> None:
        import httpx

        self.client = httpx.Client(base_url=f"{console.url}/api/v1/", timeout=30)
        answer = self.client.post("auth/token", json={"username": "admin", "password": PASSWORD})
        self.client.headers["Authorization"] = f"Bearer {answer.json()['access']}"
        self.made: list[str] = []

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        response = self.client.request(method, path, json=body)
        assert response.status_code < 300, (
            f"{method} {path}: {response.status_code} {response.text}"
        )
        return response.json() if response.content else {}

    def make(self, path: str, body: dict) -> dict:
        made = self.call("POST", path, body)
        self.made.append(f"{path}/{made.get('id', body['name'])}")
        return made

    def has_history(self, check_id: int) -> bool:
        results = self.call("GET", f"checks/{check_id}/results")["items"]
        return len(results) >= 3 and self.call("GET", f"checks/{check_id}")["state"] != "pending"


def seed_console(console, api: SeedApi, children: list[Child]) -> dict[str, str]:
    """What a busy machine shows: listeners, a project, checks up and down, an alert channel,
    a viewer. Through the API and manage.py, so the pages under test only display it."""
    # The exposed one has the long command line a person would see for a real server.
    children.append(spawn_listener("0.0.0.0"))
    children.append(spawn_listener("127.0.0.1"))
    exposed, local = children
    closed = find_free_port(exposed.port + 1)[0]
    project = {
        "name": "quality-web",
        "preferred_port": local.port,
        "fallback_ports": [closed],
        "service_type": "http",
        "working_directory": "/srv/quality-web",
        "notes": "The site the page quality tests look at.",
    }
    api.make("projects", project)
    hook = {"url": f"http://127.0.0.1:{closed}/hooks/portside"}
    channel = api.make("alerts/channels", {"name": "team hook", "kind": "webhook", "config": hook})
    every_second = {"interval_s": 1, "timeout_s": 0.5}
    up = api.make(
        "checks",
        {
            "name": "Console liveness",
            "service": "portside",
            "type": "http",
            "target": {"url": f"{console.url}/health", "expected_status": [200]},
            "warn_ms": 200,
            **every_second,
        },
    )
    down = api.make(
        "checks",
        {
            "name": "Worker queue",
            "service": "quality-web",
            "type": "tcp",
            "target": {"host": "127.0.0.1", "port": closed},
            "failures_before_down": 1,
            **every_second,
        },
    )
    for check in (up, down):
        # Pages with a history and a state, not "pending".
        assert wait_until(lambda check=check: api.has_history(check["id"]), 30, 0.5), (
            f"check {check['name']} has no history after 30 s"
        )
    manage(console, "shell", "-c", MAKE_VIEWER.format(name=VIEWER, password=PASSWORD))
    # What the Terminate and Stop links of the port's page carry.
    (listener,) = api.call("GET", f"ports/{exposed.port}")["listeners"]
    server = listener["server"] or {"pid": exposed.pid, "create_time": exposed.create_time()}
    return {
        "pid": str(exposed.pid),
        "when": f"{listener['process']['create_time']:.2f}",
        "server_pid": str(server["pid"]),
        "server_create_time": f"{server['create_time']:.2f}",
        "exposed_port": str(exposed.port),
        "free_port": str(closed),
        "project": "quality-web",
        "check": str(up["id"]),
        "down_check": str(down["id"]),
        "channel": str(channel["id"]),
        "used_link": console.sign_in_link.rstrip("/").rsplit("/", 1)[1],
    }
