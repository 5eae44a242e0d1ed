"""A check is judged by the outbound policy when it is saved, through the API, the form and
healthcheck.yml alike: a refused host is a 422 naming the address and the setting to widen.

No DNS: names are answered by the `dns` seam, and literal addresses are judged without a lookup.
Nothing here connects anywhere.
"""

from __future__ import annotations

import socket

import pytest
from django.conf import settings

from console.foundation import runtime_settings
from health import config, outbound, specs
from health.models import Check
from tests.outbound_seams import METADATA, SETTING, foreign_address

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def dns(monkeypatch):
    """Save-time lookups answered from `dns.answers`; any other name does not resolve."""

    class Answers(dict):
        def __init__(self, **names: list[str]):
            super().__init__(names)
            self.lookups: list[str] = []

    answers = Answers(localhost=["127.0.0.1", "::1"])

    def resolve(host: str) -> list[str]:
        answers.lookups.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers[host]

    monkeypatch.setattr(outbound, "_resolve_for_save", resolve)
    outbound.forget()
    yield answers
    outbound.forget()


def _create(client, user, bearer, kind: str, target: dict, name: str = "c"):
    body = {"name": name, "type": kind, "target": target}
    return client.post(
        "/api/v1/checks", body, content_type="application/json", headers=bearer(user)
    )


def _assert_refused(response, address: str = METADATA) -> str:
    assert response.status_code == 422, response.content
    detail = response.json()["detail"]
    assert address in detail
    assert SETTING in detail
    return detail


@pytest.mark.parametrize(
    ("kind", "target", "field"),
    [
        ("http", {"url": f"http://{METADATA}/latest/meta-data/"}, "target.url"),
        ("http", {"url": f"http://[::ffff:{METADATA}]/"}, "target.url"),
        ("tcp", {"host": METADATA, "port": 80}, "target.host"),
        ("redis", {"host": f"[::ffff:{METADATA}]", "port": 6379}, "target.host"),
    ],
)
def test_it_refuses_a_metadata_target_when_saving(
    client, operator_user, bearer, kind, target, field
):
    detail = _assert_refused(_create(client, operator_user, bearer, kind, target))
    assert detail.startswith(f"{field}: ")
    assert "listed explicitly" in detail
    assert not Check.objects.exists()


def test_it_saves_ten_dot_only_once_an_admin_allows_it(client, operator_user, bearer):
    target = {"host": foreign_address(), "port": 5432}
    _assert_refused(_create(client, operator_user, bearer, "tcp", target), target["host"])
    runtime_settings.update({"check_networks": "10.0.0.0/8"})
    assert _create(client, operator_user, bearer, "tcp", target).status_code == 201


def test_it_judges_a_name_by_its_addresses_when_saving(client, operator_user, bearer, dns):
    dns["cache.test"] = ["127.0.0.1", METADATA]  # any refused address refuses the name
    detail = _assert_refused(
        _create(client, operator_user, bearer, "redis", {"host": "cache.test", "port": 6379})
    )
    assert f"cache.test: {METADATA}" in detail
    dns["api.test"] = ["127.0.0.1"]
    created = _create(client, operator_user, bearer, "http", {"url": "http://api.test:8080/"})
    assert created.status_code == 201, created.content


def test_it_saves_a_name_that_does_not_resolve_yet(client, operator_user, bearer, dns):
    response = _create(client, operator_user, bearer, "tcp", {"host": "later.test", "port": 80})
    assert response.status_code == 201, response.content
    assert dns.lookups == ["later.test"]


def test_it_saves_loopback_and_localhost_targets(client, operator_user, bearer):
    for index, host in enumerate(("127.0.0.1", "localhost", "[::1]", "0.0.0.0")):
        target = {"host": host, "port": 80}
        response = _create(client, operator_user, bearer, "tcp", target, name=f"c{index}")
        assert response.status_code == 201, (host, response.content)


def test_it_refuses_an_edit_that_points_a_check_at_metadata(client, operator_user, bearer):
    check = Check.objects.create(name="db", type="tcp", target={"host": "127.0.0.1", "port": 1})
    response = client.patch(
        f"/api/v1/checks/{check.id}",
        {"target": {"host": METADATA}},
        content_type="application/json",
        headers=bearer(operator_user),
    )
    _assert_refused(response)
    check.refresh_from_db()
    assert check.target["host"] == "127.0.0.1"


def test_the_form_shows_the_refusal_next_to_the_host(client, operator_user):
    client.force_login(operator_user)
    response = client.post(
        "/checks/new/",
        {
            "name": "meta",
            "type": "tcp",
            "interval_s": 30,
            "timeout_s": 5,
            "failures_before_down": 2,
            "successes_before_up": 1,
            "host": METADATA,
            "port": 80,
            "method": "GET",
        },
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert f"{METADATA} is a link-local or cloud metadata address" in html
    assert SETTING in html
    assert not Check.objects.exists()


def test_an_import_names_the_line_of_a_refused_target(admin_user):
    text = (
        "services:\n"
        "  app:\n"
        "    checks:\n"
        "      - {type: tcp, host: 127.0.0.1, port: 80}\n"
        f"      - {{type: http, url: 'http://{METADATA}/latest/'}}\n"
    )
    with pytest.raises(config.ConfigError) as raised:
        config.import_yaml(text, admin_user)
    assert raised.value.line == 5
    assert f"target.url: {METADATA} is a link-local" in str(raised.value)
    assert SETTING in str(raised.value)
    assert not Check.objects.exists()  # all or nothing


# -- query DSNs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql://app@{METADATA}:5432/app",
        f"postgresql://app@127.0.0.1/app?hostaddr={METADATA}",  # libpq connects to hostaddr
        f"postgresql://app@127.0.0.1,{METADATA}/app",
        f"postgres://app@[::ffff:{METADATA}]/app",
        f"mysql://root@{METADATA}/app",
        f"mariadb://root:${{PORTSIDE_PW}}@{METADATA}/app",  # a placeholder hides no host
        "postgresql://app@pg.test/app",  # the dns seam answers the metadata address
    ],
)
def test_it_refuses_a_dsn_host_the_policy_refuses(client, admin_user, bearer, dns, dsn):
    dns["pg.test"] = [METADATA]
    response = _create(client, admin_user, bearer, "query", {"dsn": dsn})
    assert _assert_refused(response).startswith("target.dsn: ")
    assert not Check.objects.exists()


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://app@127.0.0.1:5432/app",
        "postgresql:///app?host=/var/run/postgresql",  # a Unix socket is this machine
        "postgresql://app@later.test/app",  # does not resolve now: judged at each run
        "mysql://root@localhost/app",
        "mysql://root@db.test/app?unix_socket=/run/mysqld/mysqld.sock",
    ],
)
def test_it_saves_a_dsn_that_stays_on_this_machine(client, admin_user, bearer, dsn):
    response = _create(client, admin_user, bearer, "query", {"dsn": dsn})
    assert response.status_code == 201, response.content


def test_it_refuses_a_dsn_libpq_cannot_read_without_quoting_it(client, admin_user, bearer):
    response = _create(
        client, admin_user, bearer, "query", {"dsn": "postgresql://app:p%zzhunter2@127.0.0.1/a"}
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "not a DSN libpq can read" in detail
    assert "hunter2" not in detail


def test_a_hostaddr_or_a_host_list_cannot_reach_the_consoles_own_postgres():
    own = {"ENGINE": "django.db.backends.postgresql", "NAME": "portside", "HOST": "127.0.0.1"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(settings.DATABASES, "other", own)
        assert specs.own_database_refusal("postgresql://x@10.9.9.9/portside?hostaddr=127.0.0.1")
        assert specs.own_database_refusal("postgresql://x@10.9.9.9,127.0.0.1/portside")
        assert specs.own_database_refusal("postgresql://x@127.0.0.1:5433/portside") is None
