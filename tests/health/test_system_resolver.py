"""The checks' resolver answers the addresses of the host it is asked about, each once."""

from __future__ import annotations

import pytest

from health.probes import netpolicy


@pytest.mark.parametrize(
    ("host", "addresses"),
    [("192.0.2.10", ["192.0.2.10"]), ("2001:db8::10", ["2001:db8::10"])],
)
async def test_a_numeric_host_resolves_to_itself_and_nothing_else(host, addresses):
    # Numeric: getaddrinfo answers without asking any server, and nothing is sent.
    assert await netpolicy.system_resolver(host, 443) == addresses
