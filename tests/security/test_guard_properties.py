"""Guard properties that hand-made mutants showed untested (tools/hand_mutants.py).

Each forged token here starts from the claims of a token the console really issued, so that it
is refused for the one reason the test names and not because some other claim is missing: the
same claims signed the console's way are accepted (the control in each test).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import jwt
import psutil
import pytest
from asgiref.sync import async_to_sync
from django.conf import settings

from console.foundation import tokens
from health import alerts, storage
from health.models import Alert, AlertChannel, Check
from ports import server_stopping, stopping
from ports.errors import Refused

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
PORTS = "/api/v1/ports?port=1"


def _claims_of(raw: str) -> dict:
    return jwt.decode(raw, options={"verify_signature": False})


def _sign(claims: dict, algorithm: str = "HS256", key: str | None = None) -> str:
    return jwt.encode(claims, key or settings.JWT_SIGNING_KEY, algorithm=algorithm)


def _bearer_status(api, raw: str) -> int:
    return api("get", PORTS, raw).status_code


# --- tokens --------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_a_live_token_signed_with_another_hmac_and_the_real_key_is_refused(
    api, viewer_user, algorithm
):
    claims = _claims_of(tokens.issue_pair(viewer_user)["access"])
    assert _bearer_status(api, _sign(claims)) == 200  # control: the console's own signing
    assert _bearer_status(api, _sign(claims, algorithm)) == 401


def test_a_live_token_left_unsigned_is_refused(api, viewer_user):
    claims = _claims_of(tokens.issue_pair(viewer_user)["access"])
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert _bearer_status(api, unsigned) == 401


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"aud": "another-service"}, id="foreign-audience"),
        pytest.param({"aud": None}, id="no-audience"),
        pytest.param({"iss": "someone-else"}, id="foreign-issuer"),
        pytest.param({"iss": None}, id="no-issuer"),
    ],
)
def test_a_live_token_for_another_audience_or_issuer_is_refused(api, viewer_user, change):
    claims = _claims_of(tokens.issue_pair(viewer_user)["access"])
    forged = {**claims, **change}
    forged = {key: value for key, value in forged.items() if value is not None}
    assert _bearer_status(api, _sign(forged)) == 401


def test_a_token_typed_refresh_is_refused_as_a_bearer_whatever_else_it_carries(api, viewer_user):
    """typ alone decides: a refresh-typed token with every claim of a live access token fails."""
    claims = _claims_of(tokens.issue_pair(viewer_user)["access"])
    assert _bearer_status(api, _sign({**claims, "typ": "refresh"})) == 401


def test_a_token_typed_access_is_refused_at_refresh_even_with_a_live_refresh_jti(api, viewer_user):
    refresh = _claims_of(tokens.issue_pair(viewer_user)["refresh"])
    as_access = _sign({**refresh, "typ": "access"})
    response = api("post", "/api/v1/auth/refresh", body={"refresh": as_access})
    assert response.status_code == 401
    control = api("post", "/api/v1/auth/refresh", body={"refresh": _sign(refresh)})
    assert control.status_code == 200


# --- secrets -------------------------------------------------------------------------------------


def test_operators_see_no_alert_channel_secrets(api, admin_user, operator_user, bearer):
    AlertChannel.objects.create(
        name="pd", kind="pagerduty", config={"routing_key": "R0UT1NG-KEY-0123456789"}
    )
    AlertChannel.objects.create(
        name="hook", kind="webhook", config={"url": "http://127.0.0.1:9/hook?token=s3cr3t"}
    )
    for who, shown in ((operator_user, False), (admin_user, True)):
        token = tokens.issue_pair(who)["access"]
        listed = api("get", "/api/v1/alerts/channels", token).json()["items"]
        text = json.dumps(listed)
        assert ("R0UT1NG-KEY" in text and "s3cr3t" in text) is shown, who.username
        if not shown:
            assert {item["name"]: item["config"] for item in listed} == {
                "pd": {"routing_key": "***"},
                "hook": {"url": "***"},
            }


# --- Host header ---------------------------------------------------------------------------------


def test_without_lan_mode_only_the_three_loopback_names_are_allowed_hosts():
    """Read from a fresh interpreter: the test runner adds its own 'testserver'."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CONSOLE_")}
    env["DJANGO_SETTINGS_MODULE"] = "console.settings"
    out = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.ALLOWED_HOSTS)"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "['localhost', '127.0.0.1', '[::1]']"


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "example.com", "localhost.example.com", "127.0.0.2", "[::]", "*"]
)
def test_a_host_header_beyond_loopback_names_is_refused(client, host):
    assert client.get("/login/", HTTP_HOST=host).status_code == 400


# --- pid 1 ---------------------------------------------------------------------------------------


def _must_not_run(*args: object) -> None:
    raise AssertionError("a protected pid must be refused before the inventory is read")


@pytest.mark.parametrize("pid", [1, 0])
def test_stopping_init_as_a_server_is_refused_before_anything_is_read(pid):
    with pytest.raises(Refused):
        server_stopping.stop_server(
            8000, pid, 1.0, snapshot_fn=_must_not_run, servers_fn=_must_not_run
        )


@pytest.fixture
def unreadable_ancestry(monkeypatch):
    """As under hidepid=2 or a parent that has just exited: no ancestor of the console reads."""

    class Unreadable:
        def __init__(self, pid: int):
            raise psutil.AccessDenied(pid)

    monkeypatch.setattr(
        stopping, "psutil", types.SimpleNamespace(Process=Unreadable, Error=psutil.Error)
    )


def test_pid_1_stays_protected_when_the_console_s_ancestry_cannot_be_read(unreadable_ancestry):
    assert {0, 1, os.getpid()} <= stopping.protected_pids()


def test_a_server_tree_holding_pid_1_is_never_signalled(listening_child, unreadable_ancestry):
    from dataclasses import replace

    from ports import inventory

    child = listening_child()

    def with_init_in_tree(listeners):
        return {
            inode: replace(server, pids=(*server.pids, 1))
            if server and server.pid == child.pid
            else server
            for inode, server in inventory.servers_of(listeners).items()
        }

    with pytest.raises(Refused, match="pid 1"):
        server_stopping.stop_server(
            child.port, child.pid, child.create_time(), servers_fn=with_init_in_tree
        )
    assert child.process.poll() is None


# --- alert order ---------------------------------------------------------------------------------


def test_one_check_s_alerts_reach_a_channel_in_the_order_they_were_raised(receiver):
    """The first answer is the slowest: alerts sent at once would be recorded out of order."""
    from django.utils import timezone

    receiver.delays = [0.6, 0.4, 0.2, 0.0]
    AlertChannel.objects.create(name="hook", kind="webhook", config={"url": receiver.url})
    check = Check.objects.create(
        name="api",
        service="api",
        type="tcp",
        target={"host": "127.0.0.1", "port": 1},
        failures_before_down=1,
        state="up",
    )
    for ok in (False, True, False, True):  # down, up, down, up: four alerts queued
        storage.store([storage.Observation(check.id, timezone.now(), ok, 1.0, "")])
    raised = list(Alert.objects.order_by("id").values_list("event", flat=True))
    assert raised == ["trigger", "recovery", "trigger", "recovery"]
    assert async_to_sync(alerts.deliver_due)() == 4
    assert [body["event"] for _path, body in receiver.received] == raised


def test_operators_see_a_channel_s_header_names_but_no_values(api, operator_user):
    AlertChannel.objects.create(
        name="hook",
        kind="webhook",
        config={
            "url": "http://127.0.0.1:9/hook",
            "headers": {"Authorization": "Bearer s3cr3t", "X-Team": "dev"},
        },
    )
    token = tokens.issue_pair(operator_user)["access"]
    (listed,) = api("get", "/api/v1/alerts/channels", token).json()["items"]
    assert listed["config"]["headers"] == {"Authorization": "***", "X-Team": "***"}
