"""What the Ports list decides per row: system services, open links, server groups, sorts."""

from __future__ import annotations

import os

from ports.inventory.records import Listener, Manager, ProcessInfo, Server
from ports.list_rows import open_url, rows_of, widest_servers
from ports.listing import ListenerFilter, is_system_service
from ports.system_accounts import people_uids

OWN_UID = os.getuid()


def _listener(port=5000, *, uid=OWN_UID, pids=(100,), service=None, address="127.0.0.1", **kw):
    process = ProcessInfo(
        pids[0] if pids else 0,
        kw.pop("name", "python"),
        "dev",
        kw.pop("cmdline", "python app.py"),
        "/src",
        create_time=1000.0,
        rss=kw.pop("rss", None),
        cpu_percent=kw.pop("cpu", None),
    )
    return Listener(
        proto=kw.pop("proto", "tcp"),
        family=kw.pop("family", "ipv4"),
        address=address,
        port=port,
        inode=port * 10,
        uid=uid,
        pids=pids,
        process=process if pids else None,
        service=service,
    )


def _server(pid, pids, kind="python", manager=None):
    return Server(pid, 1000.0, kind, f"{kind} serve", kind, tuple(pids), True, manager)


def test_it_reads_peoples_uids_from_login_defs():
    assert people_uids("UID_MIN 2000\n# UID_MAX 1\nUID_MAX   3000\n") == range(2000, 3001)
    assert people_uids(None, platform="linux") == range(1000, 60001)
    assert people_uids(None, platform="darwin").start == 501


def test_it_calls_system_accounts_and_systemd_units_system_services():
    daemon = 999 if OWN_UID != 999 else 998
    assert is_system_service(_listener(uid=daemon))
    assert is_system_service(_listener(uid=65534))  # nobody
    assert not is_system_service(_listener(uid=OWN_UID))  # the console's own account, even root
    assert not is_system_service(_listener(uid=1000 if OWN_UID != 1000 else 1001))
    unit = Manager("systemd", "ssh.service", "systemctl stop ssh", True)
    assert is_system_service(_listener(uid=OWN_UID), _server(100, [100], manager=unit))
    user_unit = Manager("systemd-user", "app.service", "systemctl --user stop app", True)
    assert not is_system_service(_listener(uid=OWN_UID), _server(100, [100], manager=user_unit))


def test_it_hides_system_services_only_when_asked():
    listeners = [_listener(5000), _listener(5432, uid=65534)]
    assert [lr.port for lr in ListenerFilter().apply(listeners)] == [5000, 5432]
    assert [lr.port for lr in ListenerFilter(hide_system=True).apply(listeners)] == [5000]


def test_it_offers_to_open_what_speaks_http():
    assert open_url(_listener(5000, service="Flask"), None) == "http://localhost:5000/"
    assert open_url(_listener(8443, service="HTTPS"), None) == "https://localhost:8443/"
    wildcard = _listener(8000, service="gunicorn", address="0.0.0.0")
    assert open_url(wildcard, None) == "http://localhost:8000/"
    lan = _listener(8080, service="HTTP (alternate)", address="192.168.1.20")
    assert open_url(lan, None) == "http://192.168.1.20:8080/"
    v6 = _listener(8080, service="HTTP (alternate)", address="fd00::5", family="ipv6")
    assert open_url(v6, None) == "http://[fd00::5]:8080/"
    # No hint of its own: the server's kind decides.
    assert open_url(_listener(8123), _server(100, [100], kind="uvicorn")) == (
        "http://localhost:8123/"
    )


def test_it_offers_no_link_to_what_does_not():
    assert open_url(_listener(5432, service="PostgreSQL"), None) is None
    # A kernel's ZeroMQ ports: its hint says so, whatever its server's kind.
    kernel = _listener(40001, service="Jupyter kernel")
    assert open_url(kernel, _server(100, [100], kind="Jupyter")) is None
    assert open_url(_listener(5353, service="HTTP", proto="udp"), None) is None
    assert open_url(_listener(9999), None) is None


def test_it_groups_kernels_under_their_notebook_server():
    notebook = _listener(8888, pids=(10,), name="jupyter-lab")
    kernels = [_listener(40000 + n, pids=(11 + n,)) for n in range(3)]
    other = _listener(5000, pids=(50,))
    servers = {
        notebook.inode: _server(10, [10, 11, 12, 13], kind="Jupyter"),
        # Each kernel is its own server to the inventory: the walk up stops at a busy parent.
        **{k.inode: _server(k.pid, [k.pid]) for k in kernels},
        other.inode: _server(50, [50], kind="Flask"),
    }
    listeners = [notebook, *kernels, other]
    groups = rows_of(listeners, servers, grouped=True)
    assert [group.header.name for group in groups] == ["Flask", "Jupyter"]  # by name
    jupyter = groups[1]
    assert [row.listener.port for row in jupyter.rows] == [8888, 40000, 40001, 40002]
    assert {row.group for row in jupyter.rows} == {jupyter.header.key}
    # Each row keeps its own server: Stop the server on a kernel stops that kernel.
    assert jupyter.rows[1].server.pid == 11
    # A kernel finds its notebook even when the notebook's own row is filtered out.
    alone = rows_of(kernels, servers, grouped=True)
    assert [group.header.name for group in alone] == ["Jupyter"]


def test_it_puts_listeners_without_a_visible_owner_in_one_group_per_uid():
    hidden = _listener(2024, uid=0, pids=())
    (group,) = rows_of([hidden], {hidden.inode: None}, grouped=True)
    assert (group.header.key, group.header.name) == ("server-uid0", "owner unknown")


def test_it_keeps_one_ungrouped_group_when_not_grouping():
    listeners = [_listener(5000), _listener(5001)]
    (group,) = rows_of(listeners, {}, grouped=False)
    assert group.header is None
    assert [row.group for row in group.rows] == ["", ""]


def test_it_picks_the_widest_server_for_a_pid():
    wide, narrow = _server(10, [10, 11, 12]), _server(11, [11])
    assert widest_servers([narrow, wide, None])[11] is wide


def test_it_sorts_by_cpu_and_memory_with_unknown_values_last_when_biggest_first():
    busy = _listener(5000, cpu=35.5, rss=300 * 2**20)
    idle = _listener(5001, cpu=0.0, rss=20 * 2**20)
    unknown = _listener(5002)
    listeners = [idle, unknown, busy]
    by_cpu = ListenerFilter(sort="cpu", descending=True).apply(listeners)
    assert [lr.port for lr in by_cpu] == [5000, 5001, 5002]
    by_memory = ListenerFilter.from_params({"sort": "-memory"}).apply(listeners)
    assert [lr.port for lr in by_memory] == [5000, 5001, 5002]


def test_it_reads_the_preferences_the_page_sends_its_socket():
    view = ListenerFilter.from_params({"hide_system": "1", "group": "server", "sort": "-cpu"})
    assert (view.hide_system, view.group_by_server) == (True, True)
    assert (view.sort, view.descending) == ("cpu", True)
    assert not ListenerFilter.from_params({"hide_system": "yes", "group": "1"}).hide_system
    assert "hide_system" not in view.as_query()  # a person's preference, not the URL's
