"""Query checks connect only where the outbound policy allows, to the address it judged.

Refused addresses are refused before the driver is called. libpq's sockets are invisible to the
`connects` guard (C code), so a PostgreSQL DSN is only ever run against loopback, and what libpq
is told (`postgres_pinned_hosts`) is asserted instead; PyMySQL's connects are Python's, and the
guard stops any beyond loopback before the system call.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from console.foundation import runtime_settings
from health import outbound
from health.probes import query, run_probe
from health.probes.netpolicy import LOCAL_ONLY, AddressRefused
from health.runner import CheckSpec, execute
from tests import netguard
from tests.conftest import skip_or_fail
from tests.health.conftest import _open
from tests.outbound_seams import METADATA, SETTING, Resolver, foreign_address, policy

connects = netguard.connects  # the fixture, by its name here
WIDE = ("0.0.0.0/0", "::/0")


@pytest.fixture
def mariadb_port() -> int:
    if not _open(3306):
        skip_or_fail("no MariaDB on 127.0.0.1:3306")
    return 3306


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql://app@{METADATA}:5432/app",
        f"postgresql://app@db.test/app?hostaddr={METADATA}",  # libpq connects to hostaddr
        f"postgresql://app@127.0.0.1,{METADATA}/app",  # every host of a list
        f"postgresql://app@[::ffff:{METADATA}]/app",
        f"mysql://root@{METADATA}:3306/app",
        f"mariadb://root@{METADATA}/app",
    ],
)
async def test_it_refuses_a_metadata_dsn_host_before_the_driver_connects(dsn, connects):
    result = await run_probe("query", {"dsn": dsn}, 5, policy=policy(*WIDE))
    assert not result.ok
    assert METADATA in result.detail
    assert SETTING in result.detail
    assert connects.addresses == []


async def test_it_refuses_a_dsn_host_off_this_machine_by_default():
    target = foreign_address()
    result = await run_probe("query", {"dsn": f"postgresql://app@{target}/app"}, 5)
    assert not result.ok
    assert f"{target} is not on this machine" in result.detail


async def test_it_pins_libpq_to_every_judged_address_of_a_name():
    resolver = Resolver(db_test=[["127.0.0.1", "::1"]])
    pinned = await query.postgres_pinned_hosts(
        "postgresql://app@db.test:5433/app?sslmode=verify-full", policy(resolver=resolver)
    )
    # The name stays for TLS; libpq connects to hostaddr and resolves nothing.
    assert pinned == {"host": "db.test,db.test", "hostaddr": "127.0.0.1,::1", "port": "5433,5433"}
    assert resolver.lookups == ["db.test"]


async def test_it_leaves_unix_socket_dsns_alone():
    for dsn in ("postgresql:///app", "postgresql:///app?host=/var/run/postgresql"):
        assert await query.postgres_pinned_hosts(dsn, LOCAL_ONLY) == {}
        assert query.network_hosts(dsn) == []
    assert query.network_hosts("mysql://root@db.test/app?unix_socket=/run/mysqld.sock") == []
    assert (
        await query.mysql_addresses("mysql://root@db.test/app?unix_socket=/x.sock", LOCAL_ONLY)
        == []
    )


async def test_it_keeps_a_socket_and_pins_a_name_in_one_host_list():
    resolver = Resolver(db_test=[["127.0.0.1"]])
    pinned = await query.postgres_pinned_hosts(
        "postgresql:///app?host=/tmp,db.test", policy(resolver=resolver)
    )
    assert pinned == {"host": "/tmp,db.test", "hostaddr": ",127.0.0.1"}


async def test_it_allows_ten_dot_for_postgres_only_when_listed():
    target = foreign_address()
    dsn = f"postgresql://app@{target}/app"
    with pytest.raises(AddressRefused, match=SETTING):
        await query.postgres_pinned_hosts(dsn, policy())
    pinned = await query.postgres_pinned_hosts(dsn, policy("10.0.0.0/8"))
    assert pinned == {"host": target, "hostaddr": target}


async def test_it_queries_postgres_through_a_name_at_the_judged_address(postgres_dsn):
    resolver = Resolver(db_invalid=[["127.0.0.1"], [METADATA]])
    rebinding = policy(resolver=resolver)
    target = {"dsn": postgres_dsn.replace("127.0.0.1", "db.invalid"), "query": "SELECT 1"}
    first = await run_probe("query", target, 5, policy=rebinding)
    assert first.ok, first.detail  # libpq never looked the name up: .invalid does not resolve
    second = await run_probe("query", target, 5, policy=rebinding)
    assert not second.ok
    assert second.detail.startswith(f"db.invalid: {METADATA} is a link-local")
    assert resolver.lookups == ["db.invalid", "db.invalid"]


async def test_it_queries_mariadb_through_a_name_at_the_judged_address(mariadb_port, connects):
    resolver = Resolver(db_invalid=[["127.0.0.1"]])
    dsn = f"mysql://root@db.invalid:{mariadb_port}/test"
    result = await run_probe("query", {"dsn": dsn}, 5, policy=policy(resolver=resolver))
    assert result.ok, result.detail
    assert connects.addresses == [("127.0.0.1", mariadb_port)]


async def test_it_tries_an_allowed_mysql_address_and_nothing_else(connects):
    target = foreign_address()
    dsn = f"mysql://root@{target}:3306/app"
    refused = await run_probe("query", {"dsn": dsn}, 5, policy=policy())
    assert not refused.ok
    assert connects.addresses == []
    tried = await run_probe("query", {"dsn": dsn}, 5, policy=policy("10.0.0.0/8"))
    assert not tried.ok
    assert connects.addresses == [(target, 3306)]  # the guard stopped it before the system call


@pytest.mark.parametrize(
    ("dsn", "words"),
    [
        ("postgresql://app:p%zzhunter2@127.0.0.1/app", "not a DSN libpq can read"),
        ("postgresql://app@127.0.0.1/app?service=prod", "pg_service.conf"),
        ("postgresql://app@a,b/app?hostaddr=127.0.0.1", "2 hosts but 1 hostaddr"),
        ("postgresql://app@db.test/app?hostaddr=db.test", "not an IP address"),
        ("mysql://root:hunter2@127.0.0.1:99999/app", "port"),
    ],
)
async def test_it_fails_a_dsn_the_driver_cannot_read_without_quoting_it(dsn, words, connects):
    result = await run_probe("query", {"dsn": dsn}, 5)
    assert not result.ok
    assert words in result.detail
    assert "hunter2" not in result.detail
    assert connects.addresses == []


@pytest.mark.django_db(transaction=True)
async def test_the_runner_passes_the_policy_in_force_to_the_query_probe(connects):
    outbound.forget()
    target = foreign_address()
    spec = CheckSpec(1, "q", "query", {"dsn": f"mysql://root@{target}/app"}, 60, 5)
    refused = await execute(spec)
    assert not refused.ok
    assert SETTING in refused.detail
    assert connects.addresses == []
    await sync_to_async(runtime_settings.update)({"check_networks": "10.0.0.0/8"})
    try:
        tried = await execute(spec)
        assert not tried.ok
        assert connects.hosts == [target]
    finally:
        outbound.forget()
