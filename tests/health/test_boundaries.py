"""The checks' trust boundaries: query checks never read the console's data, ${VAR} cannot pour
the environment out, and secrets are shown to admins only."""

from __future__ import annotations

import os
import sqlite3
import textwrap

import pytest
import yaml
from django.conf import settings
from django.core.exceptions import PermissionDenied

from console.foundation.models import AuditEntry
from health import config, operations, specs
from health.models import AlertChannel, Check
from health.probes import run_probe
from health.runner import CheckSpec, execute

pytestmark = pytest.mark.django_db


def _post(client, path, body, headers):
    return client.post(path, body, content_type="application/json", headers=headers)


def _own_sqlite() -> str:
    return str(settings.DATABASES["default"]["NAME"])


# -- 1. query checks ---------------------------------------------------------------------------


def test_a_query_check_by_django_alias_is_refused(client, admin_user, bearer):
    body = {
        "name": "sessions",
        "type": "query",
        "target": {"database": "default", "query": "SELECT session_key FROM django_session"},
    }
    response = _post(client, "/api/v1/checks", body, bearer(admin_user))
    assert response.status_code == 422
    assert "dsn" in response.json()["detail"] and not Check.objects.exists()


def test_a_dsn_to_the_consoles_own_database_is_refused_even_through_a_symlink(
    client, admin_user, bearer, tmp_path
):
    own = _own_sqlite()
    if own in {"", ":memory:"} or own.startswith("file:"):
        # The test database is in memory here: make a file database the console's own.
        own = str(tmp_path / "console.sqlite3")
        sqlite3.connect(own).close()
        settings.DATABASES["default"]["NAME"], original = own, settings.DATABASES["default"]["NAME"]
    else:
        original = own
    link = tmp_path / "innocent.db"
    link.symlink_to(own)
    try:
        for dsn in (f"sqlite:///{own}", f"sqlite:///{link}"):
            body = {"name": "own", "type": "query", "target": {"dsn": dsn, "query": "SELECT 1"}}
            response = _post(client, "/api/v1/checks", body, bearer(admin_user))
            assert response.status_code == 422, response.content
            assert "console's own database" in response.json()["detail"]
    finally:
        settings.DATABASES["default"]["NAME"] = original


def test_it_refuses_the_consoles_own_postgres_database():
    own = {"ENGINE": "django.db.backends.postgresql", "NAME": "portside", "HOST": "127.0.0.1"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(settings.DATABASES, "other", own)
        assert specs.own_database_refusal("postgresql://x@localhost/portside")
        assert specs.own_database_refusal("postgresql://x@127.0.0.1:5432/portside?sslmode=off")
        assert specs.own_database_refusal("postgresql://x@localhost/app") is None


def test_a_yaml_query_entry_without_a_dsn_names_the_line(admin_user):
    text = "services:\n  database:\n    checks:\n      - {type: query, query: 'SELECT 1'}\n"
    with pytest.raises(config.ConfigError) as raised:
        config.import_yaml(text, admin_user)
    assert raised.value.line == 4 and "add dsn: postgresql://" in str(raised.value)
    assert not Check.objects.exists()


@pytest.mark.parametrize("kind", ["query", "command"])
def test_operators_cannot_create_run_pause_or_resume_query_and_command_checks(
    client, admin_user, operator_user, bearer, tmp_path, kind
):
    db = tmp_path / "app.db"
    sqlite3.connect(db).close()
    target = {"dsn": f"sqlite:///{db}"} if kind == "query" else {"argv": ["sh", "-c", "true"]}
    body = {"name": f"admin's {kind}", "type": kind, "target": target}
    assert _post(client, "/api/v1/checks", body, bearer(operator_user)).status_code == 403
    created = _post(client, "/api/v1/checks", body, bearer(admin_user))
    assert created.status_code == 201, created.content
    check_id = created.json()["id"]
    for action in ("run", "pause", "resume"):
        path = f"/api/v1/checks/{check_id}/{action}"
        assert client.post(path, headers=bearer(operator_user)).status_code == 403, action
    patch = client.patch(
        f"/api/v1/checks/{check_id}",
        {"interval_s": 60},
        content_type="application/json",
        headers=bearer(operator_user),
    )
    assert patch.status_code == 403
    assert AuditEntry.objects.filter(action="check.run", outcome="forbidden").exists()
    ran = client.post(f"/api/v1/checks/{check_id}/run", headers=bearer(admin_user))
    assert ran.status_code == 200


def test_an_operators_yaml_import_cannot_bring_a_query_check(operator_user, tmp_path):
    text = f"checks:\n  - {{type: query, dsn: 'sqlite:///{tmp_path}/a.db'}}\n"
    with pytest.raises(PermissionDenied):
        config.import_yaml(text, operator_user)
    assert not Check.objects.exists()


async def test_sqlite_is_read_only_by_the_database_itself(tmp_path):
    db = tmp_path / "app.db"
    connection = sqlite3.connect(db)
    connection.execute("CREATE TABLE t (x)")
    connection.execute("INSERT INTO t VALUES ('hunter2')")
    connection.commit()
    connection.close()
    dsn = f"sqlite:///{db}"
    for statement in (
        f"ATTACH DATABASE 'file:{tmp_path}/x.db?mode=rwc' AS x",
        f"VACUUM INTO '{tmp_path}/copy.db'",
        "PRAGMA journal_mode = DELETE",
        "INSERT INTO t VALUES (1)",
        "SELECT 1; DELETE FROM t",
    ):
        result = await run_probe("query", {"dsn": dsn, "query": statement}, 5)
        assert not result.ok, statement
    assert sorted(os.listdir(tmp_path)) == ["app.db"]  # no file was written
    read = await run_probe("query", {"dsn": dsn, "query": "SELECT x FROM t"}, 5)
    assert read.ok and read.detail == "1 row" and "hunter2" not in read.detail
    matched = await run_probe("query", {"dsn": dsn, "query": "SELECT x FROM t", "expect": "no"}, 5)
    assert not matched.ok and "hunter2" not in matched.detail


async def test_postgres_runs_read_only_with_a_statement_timeout(postgres_dsn):
    write = await run_probe("query", {"dsn": postgres_dsn, "query": "CREATE TABLE p10 (x int)"}, 5)
    assert not write.ok and "read-only" in write.detail
    slow = await run_probe("query", {"dsn": postgres_dsn, "query": "SELECT pg_sleep(5)"}, 1)
    assert not slow.ok
    leak = await run_probe(
        "query", {"dsn": postgres_dsn, "query": "SELECT CAST(usename AS int) FROM pg_user"}, 5
    )
    assert not leak.ok and "postgres" not in leak.detail  # the value is not quoted back


@pytest.fixture
def mariadb_dsn() -> str:
    from tests.conftest import skip_or_fail
    from tests.health.conftest import _open

    if not _open(3306):
        skip_or_fail("no MariaDB on 127.0.0.1:3306")
    return "mysql://root@127.0.0.1:3306/test"


async def test_mariadb_runs_read_only_even_for_ddl(mariadb_dsn):
    ok = await run_probe("query", {"dsn": mariadb_dsn, "query": "SELECT 1", "expect": 1}, 5)
    assert ok.ok, ok.detail
    # DDL commits implicitly and would end a plain read-only transaction: the session refuses.
    ddl = await run_probe("query", {"dsn": mariadb_dsn, "query": "CREATE TABLE m10 (x int)"}, 5)
    assert not ddl.ok and "READ ONLY" in ddl.detail


def test_a_stored_alias_check_fails_with_the_fix_instead_of_reading_the_console():
    check = Check.objects.create(
        name="legacy", type="query", target={"database": "default", "query": "SELECT 1"}
    )
    from asgiref.sync import async_to_sync

    observation = async_to_sync(execute)(CheckSpec.of(check))
    assert not observation.ok and "needs a dsn" in observation.detail


# -- 2. ${VAR} ----------------------------------------------------------------------------------


def test_an_operators_import_cannot_expand_the_environment(operator_user):
    text = "checks:\n  - {type: tcp, name: 'leak ${PATH}', port: 1}\n"
    with pytest.raises(config.ConfigError) as raised:
        config.import_yaml(text, operator_user)
    assert raised.value.line == 2 and "secret fields" in str(raised.value)
    assert not Check.objects.filter(name__contains="/").exists()


@pytest.mark.parametrize(
    "value,words",
    [
        ("${CONSOLE_JWT_KEY}", "only variables starting with PORTSIDE_"),
        ("${HOME}", "only variables starting with PORTSIDE_"),
        ("${PORTSIDE_NOT_SET_ANYWHERE}", "is not set"),
    ],
)
def test_an_admins_import_expands_only_allowed_variables(admin_user, value, words):
    text = f"checks:\n  - {{type: redis, name: r, password: '{value}'}}\n"
    with pytest.raises(config.ConfigError) as raised:
        config.import_yaml(text, admin_user, environ={"CONSOLE_JWT_KEY": "k" * 40, "HOME": "/"})
    assert raised.value.line == 2 and words in str(raised.value)


def test_the_placeholder_is_stored_and_resolved_at_use(admin_user, echo_server, monkeypatch):
    monkeypatch.setenv("PORTSIDE_HELLO", "secret-hello")
    text = textwrap.dedent(
        f"""\
        checks:
          - {{type: tcp, name: t, port: {echo_server.port}, send: '${{PORTSIDE_HELLO}}',
              expect: 'echo:secret-hello'}}
        """
    )
    config.import_yaml(text, admin_user)
    check = Check.objects.get(name="t")
    assert check.target["send"] == "${PORTSIDE_HELLO}"  # the value never sits in the database
    observation = operations.run_check(admin_user, check)
    assert observation.ok, observation.detail
    assert "${PORTSIDE_HELLO}" in config.export_yaml(reveal=True)


def test_placeholders_outside_an_admins_import_are_refused(client, admin_user, bearer):
    body = {"name": "x", "type": "redis", "target": {"password": "${PORTSIDE_X}"}}
    response = _post(client, "/api/v1/checks", body, bearer(admin_user))
    assert response.status_code == 422 and "import" in response.json()["detail"]


def test_an_edit_keeps_a_stored_placeholder_but_cannot_add_one(admin_user, operator_user):
    env = {"PORTSIDE_REDIS_PW": "pw", "PORTSIDE_HOOK": "http://127.0.0.1:9/hook"}
    text = textwrap.dedent(
        """\
        checks:
          - {type: redis, name: r, password: '${PORTSIDE_REDIS_PW}'}
        alerts:
          slack: {webhook_url: '${PORTSIDE_HOOK}'}
        """
    )
    config.import_yaml(text, admin_user, environ=env)
    check, channel = Check.objects.get(name="r"), AlertChannel.objects.get(name="slack")
    operations.update_check(operator_user, check, {"interval_s": 60})
    operations.update_channel(admin_user, channel, {"remind_every_s": 600})
    check.refresh_from_db()
    channel.refresh_from_db()
    assert check.target["password"] == "${PORTSIDE_REDIS_PW}"
    assert channel.config["webhook_url"] == "${PORTSIDE_HOOK}"
    with pytest.raises(specs.InvalidCheck, match="import"):
        operations.update_check(operator_user, check, {"target": {"password": "${PORTSIDE_X}"}})
    with pytest.raises(specs.InvalidCheck, match="import"):
        operations.update_channel(admin_user, channel, {"config": {"webhook_url": "${PORTSIDE_X}"}})


def test_the_yaml_reader_takes_placeholders_in_exactly_the_secret_fields():
    from health import secrets

    fields = {name for names in secrets.CHECK_SECRETS.values() for name in names}
    fields |= set(secrets.CHANNEL_SECRETS)
    # Besides them, only the file's own names for two of them.
    assert config.PLACEHOLDER_KEYS - fields == {"endpoint", "service_key"}
    assert fields <= config.PLACEHOLDER_KEYS


# -- 3. secrets for admins only ----------------------------------------------------------------

SECRETS = {
    "http": {
        "url": "http://user:pw-in-url@127.0.0.1:5000/",
        "headers": {"X-Token": "header-secret"},
    },
    "tcp": {"host": "127.0.0.1", "port": 1, "send": "AUTH tcp-secret"},
    "redis": {"host": "127.0.0.1", "port": 6379, "password": "redis-secret"},
    "query": {"dsn": "postgresql://app:dsn-secret@127.0.0.1/app?password=qs-secret"},
}
SECRET_WORDS = (
    "pw-in-url",
    "header-secret",
    "tcp-secret",
    "redis-secret",
    "dsn-secret",
    "qs-secret",
    "hooks.slack",
    "pd-routing",
)


@pytest.fixture
def secret_set_up(admin_user):
    for kind, target in SECRETS.items():
        operations.create_check(admin_user, {"name": kind, "type": kind, "target": target})
    AlertChannel.objects.create(
        name="slack", kind="slack", config={"webhook_url": "https://hooks.slack.test/x"}
    )
    AlertChannel.objects.create(name="pd", kind="pagerduty", config={"routing_key": "pd-routing"})


def test_an_operators_export_redacts_every_secret(client, operator_user, bearer, secret_set_up):
    response = client.get("/api/v1/health/export", headers=bearer(operator_user))
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    text = response.content.decode()
    for word in SECRET_WORDS:
        assert word not in text, word
    assert yaml.safe_load(text)["alerts"]["slack"]["webhook_url"] == "***"
    assert AuditEntry.objects.filter(action="health.export", detail__secrets="redacted").exists()


def test_an_admins_export_carries_the_secrets(client, admin_user, bearer, secret_set_up):
    text = client.get("/api/v1/health/export", headers=bearer(admin_user)).content.decode()
    for word in SECRET_WORDS:
        assert word in text, word


def test_an_admins_token_scoped_to_operate_exports_without_the_secrets(
    client, admin_user, secret_set_up
):
    # A token caps its holder: an admin's operate token may export, as an operator would.
    from console.foundation import tokens

    _record, raw = tokens.issue_personal(admin_user, "ci", ["operate"], 1)
    response = client.get("/api/v1/health/export", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 200
    text = response.content.decode()
    for word in SECRET_WORDS:
        assert word not in text, word
    assert AuditEntry.objects.filter(action="health.export", detail__secrets="redacted").exists()


def test_viewers_and_operators_read_checks_without_secrets(
    client, viewer_user, operator_user, admin_user, bearer, secret_set_up
):
    for user in (viewer_user, operator_user):
        listed = client.get("/api/v1/checks", headers=bearer(user)).content.decode()
        channels = client.get("/api/v1/alerts/channels", headers=bearer(user)).content.decode()
        for word in SECRET_WORDS:
            assert word not in listed + channels, (user, word)
    admin_view = client.get("/api/v1/checks", headers=bearer(admin_user)).content.decode()
    assert "redis-secret" in admin_view


def test_an_operator_editing_with_redacted_values_keeps_the_secrets(
    client, operator_user, bearer, secret_set_up
):
    check = Check.objects.get(name="http")
    shown = client.get(f"/api/v1/checks/{check.id}", headers=bearer(operator_user)).json()
    response = client.patch(
        f"/api/v1/checks/{check.id}",
        {"target": shown["target"], "interval_s": 60},
        content_type="application/json",
        headers=bearer(operator_user),
    )
    assert response.status_code == 200, response.content
    check.refresh_from_db()
    assert check.target["url"] == SECRETS["http"]["url"]
    assert check.target["headers"] == SECRETS["http"]["headers"] and check.interval_s == 60
