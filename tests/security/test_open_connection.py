"""netpolicy.open_connection: it connects to the address it judged, with the name it was given
for TLS, and never resolves the name a second time."""

from __future__ import annotations

import ssl

import pytest

from health.probes import netpolicy
from health.probes.netpolicy import NetworkPolicy


class _Recorder:
    """A connector that records what it was asked to connect to, and connects nowhere."""

    def __init__(self):
        self.calls: list[tuple[str, int, dict]] = []

    async def __call__(self, address, port, **kwargs):
        self.calls.append((address, port, kwargs))
        return "reader", "writer"


def _names(answers: dict[str, list[str]]):
    async def resolver(host: str, port: int) -> list[str]:
        return answers[host]

    return resolver


@pytest.mark.parametrize(
    ("host", "address", "server_hostname"),
    [
        ("Xenon.test", "127.0.0.1", "Xenon.test"),
        ("[::1]", "::1", "::1"),  # an address literal: no resolver asked
        (" db.test ", "127.0.0.1", "db.test"),
    ],
)
async def test_tls_checks_the_certificate_against_the_name_it_was_given(
    host, address, server_hostname
):
    connector = _Recorder()
    resolver = _names({"Xenon.test": ["127.0.0.1"], "db.test": ["127.0.0.1"]})
    context = ssl.create_default_context()
    await netpolicy.open_connection(
        host, 443, NetworkPolicy(), resolver=resolver, connector=connector, ssl=context
    )
    # The judged address, not the name again; the certificate checked against the name.
    assert connector.calls == [(address, 443, {"ssl": context, "server_hostname": server_hostname})]


async def test_a_server_hostname_the_caller_chose_is_kept():
    connector = _Recorder()
    resolver = _names({"db.test": ["127.0.0.1"]})
    context = ssl.create_default_context()
    await netpolicy.open_connection(
        "db.test",
        5432,
        NetworkPolicy(),
        resolver=resolver,
        connector=connector,
        ssl=context,
        server_hostname="postgres.internal",
    )
    assert connector.calls[0][2]["server_hostname"] == "postgres.internal"


async def test_a_plain_connection_gets_no_server_hostname():
    connector = _Recorder()
    resolver = _names({"db.test": ["127.0.0.1"]})
    await netpolicy.open_connection(
        "db.test", 5432, NetworkPolicy(), resolver=resolver, connector=connector
    )
    assert connector.calls == [("127.0.0.1", 5432, {})]
