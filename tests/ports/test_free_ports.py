"""ports.free_ports.scan_free_ports: the free ports, and why each port before them was passed over.

Real sockets on loopback: listeners, a bound socket that never listens, a real TIME_WAIT.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from ports import errors, free_ports
from ports.free_ports import MAX_SKIPPED_REPORTED, SkipReason
from tests.ports.time_wait_helpers import leave_time_wait


def _reasons(scan: free_ports.FreePortScan) -> dict[int, tuple[str, str]]:
    return {each.port: (each.reason.value, each.detail) for each in scan.skipped}


def test_it_names_the_process_holding_a_skipped_port(listening_child) -> None:
    child = listening_child(host="127.0.0.1")
    scan = free_ports.scan_free_ports(child.port, count=1)
    assert scan.ports[0] > child.port
    reason, detail = _reasons(scan)[child.port]
    assert reason == "held"
    assert detail == f"held by python (pid {child.pid}) on 127.0.0.1:{child.port}"


def test_it_brackets_an_ipv6_holder(sockets: Callable[..., socket.socket]) -> None:
    held = sockets("tcp", "::", v6only=False).getsockname()[1]
    scan = free_ports.scan_free_ports(held)
    assert _reasons(scan)[held][1].endswith(f"on [::]:{held}")


def test_it_names_the_project_that_reserves_a_port(listening_child) -> None:
    child = listening_child(host="127.0.0.1")
    reserved = free_ports.find_free_port(child.port + 1)[0]
    scan = free_ports.scan_free_ports(child.port, reserved={reserved: "shop"})
    assert reserved not in scan.ports
    assert _reasons(scan)[reserved] == ("reserved", "reserved by project shop")
    # The same ports left out by the caller, without a project: "excluded".
    scan = free_ports.scan_free_ports(child.port, exclude=[reserved])
    assert _reasons(scan)[reserved] == ("excluded", "excluded by the request")


def test_it_tells_time_wait_from_a_holder() -> None:
    port = leave_time_wait(reuse_address=True)
    scan = free_ports.scan_free_ports(port)
    assert port not in scan.ports
    reason, detail = _reasons(scan)[port]
    assert reason == "time-wait"
    assert "1 closed connection in TIME_WAIT for" in detail


def test_it_calls_a_bound_socket_that_never_listens_busy() -> None:
    # What a server looks like between bind() and listen(): invisible to a listener dump.
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        reason, detail = _reasons(free_ports.scan_free_ports(port))[port]
    assert reason == "busy"
    assert "bound without listening" in detail


def test_it_reports_the_privileged_range_once() -> None:
    scan = free_ports.scan_free_ports(80)
    assert scan.ports[0] >= 1024
    (first, *_) = scan.skipped
    assert (first.port, first.reason) == (80, SkipReason.PRIVILEGED)
    assert "80-1023 are privileged" in first.detail


def test_it_caps_the_skipped_ports_it_reports() -> None:
    start = free_ports.find_free_port(40000)[0]
    excluded = range(start, start + MAX_SKIPPED_REPORTED + 10)
    scan = free_ports.scan_free_ports(start, exclude=excluded)
    assert scan.ports[0] >= excluded.stop
    assert len(scan.skipped) == MAX_SKIPPED_REPORTED
    assert [each.port for each in scan.skipped] == list(excluded)[:MAX_SKIPPED_REPORTED]
    assert scan.skipped_total >= len(excluded)


def test_it_keeps_find_free_port_a_list_of_ports(listening_child) -> None:
    child = listening_child(host="127.0.0.1")
    ports = free_ports.find_free_port(child.port, count=2)
    assert ports == free_ports.scan_free_ports(child.port, count=2).ports
    assert all(isinstance(port, int) for port in ports)
    assert child.port not in ports


def test_it_validates_like_find_free_port() -> None:
    with pytest.raises(ValueError, match="count must be an integer between 1 and 100"):
        free_ports.scan_free_ports(count=0)
    with pytest.raises(errors.NoFreePort):
        free_ports.scan_free_ports(65530, exclude=range(65530, 65536))


@pytest.mark.django_db
def test_it_returns_ports_and_skipped_in_the_api(client, viewer_user, bearer, listening_child):
    from ports.models import Project

    child = listening_child(host="127.0.0.1")
    reserved = free_ports.find_free_port(child.port + 1)[0]
    Project.objects.create(name="shop", preferred_port=reserved)
    response = client.get(
        "/api/v1/ports/free", {"near": child.port, "count": 1}, headers=bearer(viewer_user)
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ports"][0] > reserved
    skipped = {each["port"]: each for each in body["skipped"]}
    assert skipped[child.port]["reason"] == "held"
    assert f"(pid {child.pid})" in skipped[child.port]["detail"]
    assert skipped[reserved] == {
        "port": reserved,
        "reason": "reserved",
        "detail": "reserved by project shop",
    }


def test_it_says_a_project_port_is_in_time_wait_when_allocating() -> None:
    port = leave_time_wait(reuse_address=False)
    allocation = free_ports.allocate("shop", [port], reserved_by_others={})
    assert allocation.port != port
    (skipped,) = allocation.skipped
    assert skipped.startswith(f"{port} has 1 closed connection in TIME_WAIT for ")
