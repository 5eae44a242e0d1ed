"""This machine's own addresses, which a check may reach without an admin's say: where they
come from, how long they are trusted, and what a refusal of a metadata address tells an admin."""

from __future__ import annotations

import ipaddress
import socket

import psutil
import pytest

from health.probes import netpolicy
from health.probes.netpolicy import NetworkPolicy


def test_the_interfaces_give_the_machines_own_ip_addresses():
    read = set(netpolicy._read_interface_addresses())
    assert ipaddress.ip_address("127.0.0.1") in read
    # Nothing but IP addresses: an interface's MAC address is listed too, and is not one.
    assert all(
        isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address) for address in read
    )


def test_without_the_interface_list_it_falls_back_to_what_the_host_name_resolves_to(monkeypatch):
    def refused():
        raise PermissionError("no access to the interface list")

    monkeypatch.setattr(psutil, "net_if_addrs", refused)
    by_name = {
        ipaddress.ip_address(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None)
    }
    assert set(netpolicy._read_interface_addresses()) == by_name


@pytest.fixture
def counted_reads(monkeypatch):
    reads = []

    def read():
        reads.append(1)
        return [ipaddress.ip_address("192.0.2.10")]

    monkeypatch.setattr(netpolicy, "_read_interface_addresses", read)
    return reads


def test_the_addresses_are_read_once_and_then_kept(counted_reads):
    own = netpolicy._OwnAddresses()
    assert own() == {ipaddress.ip_address("192.0.2.10")}
    assert own() == {ipaddress.ip_address("192.0.2.10")}
    assert len(counted_reads) == 1


def test_an_unknown_address_rereads_the_interfaces_at_most_once_a_retry_interval(counted_reads):
    own = netpolicy._OwnAddresses()
    stranger = ipaddress.ip_address("192.0.2.99")
    assert own.contains(ipaddress.ip_address("192.0.2.10"))
    assert not own.contains(stranger) and not own.contains(stranger)
    assert len(counted_reads) == 1  # a check hammering a foreign address does not re-read
    # Once the retry interval has passed, the next unknown address reads them again (a new
    # interface, a DHCP lease), once.
    own._read_at -= netpolicy.OWN_ADDRESSES_RETRY_S + 0.5
    assert not own.contains(stranger) and not own.contains(stranger)
    assert len(counted_reads) == 2


def test_a_metadata_refusal_names_the_exact_network_an_admin_would_list():
    refusal = NetworkPolicy(extra_networks=netpolicy.parse_networks("0.0.0.0/0")).refusal(
        "169.254.169.254"
    )
    assert refusal == (
        "169.254.169.254 is a link-local or cloud metadata address, refused unless listed "
        f"explicitly; an admin can list 169.254.169.254/32 in {netpolicy.WHERE_TO_ALLOW}"
    )
