"""Seams for the outbound-policy tests: a scripted resolver, a connector that opens nothing, a
machine without addresses of its own, and an address beyond it. With `tests.netguard` they let
a test judge any address while no packet leaves loopback."""

from __future__ import annotations

import ipaddress
import socket

from health.probes.netpolicy import NetworkPolicy, own_addresses

METADATA = "169.254.169.254"
SETTING = "CONSOLE_CHECK_NETWORKS"


def no_own_addresses(_address) -> bool:
    """A machine whose only addresses are loopback, so a 10.x of the test host changes nothing."""
    return False


def policy(*networks: str, resolver=None) -> NetworkPolicy:
    extra = {"resolver": resolver} if resolver else {}
    return NetworkPolicy.from_text(*networks, is_own_address=no_own_addresses, **extra)


class Resolver:
    """A DNS seam: `answers[name]` is a list of answers, one per lookup (the last repeats).
    Keyword names spell dots as underscores: Resolver(db_test=[["127.0.0.1"]])."""

    def __init__(self, **answers: list[list[str]]):
        self.answers = {name.replace("_", "."): list(each) for name, each in answers.items()}
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        queue = self.answers[host]
        return queue.pop(0) if len(queue) > 1 else queue[0]


class RecordingConnector:
    """Stands in for asyncio.open_connection: records where it was asked to go, opens nothing."""

    def __init__(self):
        self.calls: list[tuple[str, int, dict]] = []

    async def __call__(self, host, port, **kwargs):
        self.calls.append((host, port, kwargs))
        return "reader", "writer"


def foreign_address(network: str = "10.0.0.0/8") -> str:
    """An address in `network` that is not one of this machine's own."""
    own = own_addresses()
    for address in ipaddress.ip_network(network).hosts():
        if address not in own and not str(address).endswith(".0"):
            return str(address)
    raise AssertionError(f"every address of {network} is this machine's")
