"""The outbound policy from the settings: CONSOLE_CHECK_NETWORKS, the Security page's Check
networks, the cache, save-time judgement of a host and the runner passing the policy on.

No traffic beyond loopback: the `connects` guard stops any such connect before the system call.
"""

from __future__ import annotations

import socket
from concurrent.futures import TimeoutError as FutureTimeout

import pytest
from django.core.exceptions import ImproperlyConfigured

from console.foundation import runtime_settings
from console.foundation.models import SecuritySettings
from health import outbound
from health.runner import CheckSpec, execute
from tests import netguard
from tests.outbound_seams import METADATA, foreign_address

connects = netguard.connects  # the fixture, by its name here


@pytest.fixture(autouse=True)
def fresh_policy():
    outbound.forget()
    yield
    outbound.forget()


def test_it_allows_only_this_machine_by_default(db):
    current = outbound.policy()
    assert current.refusal("127.0.0.1") is None
    reason = current.refusal(foreign_address())
    assert reason is not None
    assert "CONSOLE_CHECK_NETWORKS" in reason


def test_it_widens_by_console_check_networks(db, settings):
    settings.CONSOLE_CHECK_NETWORKS = "10.0.0.0/8, 192.168.50.0/24"
    current = outbound.policy()
    assert current.refusal(foreign_address()) is None
    assert current.refusal("192.168.50.9") is None
    assert current.refusal(METADATA) is not None


def test_it_widens_by_the_security_page_setting_at_once_on_save(db):
    target = foreign_address("10.9.0.0/16")
    assert outbound.policy().refusal(target) is not None
    runtime_settings.update({"check_networks": "10.9.0.0/16"})
    assert outbound.policy().refusal(target) is None  # saved: the cached policy is forgotten
    runtime_settings.update({"check_networks": ""})
    assert outbound.policy().refusal(target) is not None


def test_it_never_unlocks_metadata_by_a_wide_network(db, settings):
    settings.CONSOLE_CHECK_NETWORKS = "0.0.0.0/0"
    runtime_settings.update({"check_networks": "::/0"})
    reason = outbound.policy().refusal(METADATA)
    assert reason is not None
    assert "listed explicitly" in reason
    runtime_settings.update({"check_networks": "169.254.169.254/32"})
    assert outbound.policy().refusal(METADATA) is None


def test_lan_mode_gives_no_wider_reach(db, settings):
    settings.LAN_MODE = True
    assert outbound.policy().refusal(foreign_address("192.168.0.0/16")) is not None


def test_it_reads_the_database_once_for_many_probes(db, django_assert_num_queries):
    outbound.policy()
    with django_assert_num_queries(0):
        for _ in range(100):
            outbound.policy()


def test_it_ignores_a_hand_edited_invalid_row_rather_than_widening(db, settings):
    settings.CONSOLE_CHECK_NETWORKS = "10.0.0.0/8"
    runtime_settings.current()
    SecuritySettings.objects.filter(pk=1).update(check_networks="not-a-network 0.0.0.0/0")
    current = outbound.policy()
    assert current.refusal(foreign_address()) is None  # the environment's still apply
    assert current.refusal(foreign_address("172.16.0.0/12")) is not None


def test_it_refuses_a_bad_console_check_networks_at_start(monkeypatch):
    from console import settings as console_settings

    monkeypatch.setenv("CONSOLE_CHECK_NETWORKS", "10.0.0.0/8, intranet")
    with pytest.raises(ImproperlyConfigured, match="'intranet' is not a network"):
        console_settings._check_networks("CONSOLE_CHECK_NETWORKS")


# -- at save time -------------------------------------------------------------------------


def test_it_refuses_a_literal_address_at_save_naming_it_and_the_setting(db):
    reason = outbound.refusal_for_host(METADATA)
    assert reason is not None
    assert METADATA in reason
    assert "CONSOLE_CHECK_NETWORKS" in reason
    assert outbound.refusal_for_host("127.0.0.1") is None
    assert outbound.refusal_for_host("[::1]") is None
    assert outbound.refusal_for_host("::ffff:169.254.169.254") is not None


def test_it_judges_a_name_by_what_it_resolves_to_at_save(db):
    assert outbound.refusal_for_host("localhost") is None
    reason = outbound.refusal_for_host("metadata.test", resolve=lambda host: [METADATA])
    assert reason is not None
    assert reason.startswith("metadata.test: 169.254.169.254")


def test_it_saves_a_name_that_does_not_resolve_now(db):
    def no_such_name(host: str) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    def slow(host: str) -> list[str]:
        raise FutureTimeout()

    assert outbound.refusal_for_host("later.test", resolve=no_such_name) is None
    assert outbound.refusal_for_host("slow.test", resolve=slow) is None


# -- at run time, through the runner ------------------------------------------------------


def _spec(host: str, port: int = 6379) -> CheckSpec:
    return CheckSpec(1, "t", "tcp", {"host": host, "port": port}, 60, 5)


@pytest.mark.django_db(transaction=True)
async def test_the_runner_passes_the_policy_in_force_to_the_probe(connects):
    target = foreign_address()
    refused = await execute(_spec(target))
    assert not refused.ok
    assert f"{target} is not on this machine" in refused.detail
    assert connects.addresses == []
    # Allowed on the Security page: the probe goes there (the guard stops the connect).
    from asgiref.sync import sync_to_async

    await sync_to_async(runtime_settings.update)({"check_networks": "10.0.0.0/8"})
    tried = await execute(_spec(target))
    assert not tried.ok
    assert connects.hosts == [target]


@pytest.mark.django_db(transaction=True)
async def test_the_runner_refuses_metadata(connects):
    observation = await execute(_spec(METADATA, 80))
    assert not observation.ok
    assert METADATA in observation.detail
    assert connects.addresses == []
