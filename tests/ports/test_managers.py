"""Who manages a server (ports.inventory.managers) and the Docker Engine client (docker_engine).

The cgroup texts are as real machines write them to /proc/PID/cgroup (cgroup v2, and v1 with one
line per hierarchy); the process chains are those pm2, supervisord, terminals and daemons make.

No Docker Engine can run on this machine (no dockerd, no privileges for one), so the client is
tested against a FAKE ENGINE (tests/ports/fake_docker_engine.py) that each test starts on a unix
socket in tmp_path: a small http.server speaking the documented Engine API (`GET /_ping`,
`GET /containers/{id}/json`, `GET /containers/json`, `POST /containers/{id}/stop?t=N` with
204/304/404). The client under test is the real one, over a real socket. The last tests read this
machine's own /proc and environment.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from ports.inventory import managers
from ports.inventory.docker_engine import (
    DEFAULT_SOCKET,
    ContainerInfo,
    EngineClient,
    EngineError,
    engine_socket_path,
)
from ports.inventory.managers import (
    KINDS,
    ManagerCache,
    container_in_cgroup,
    decide_manager,
    manager_of,
    read_cgroup,
    read_environ,
    service_unit_in_cgroup,
)
from ports.inventory.records import Manager, ProcessNode
from tests.ports.fake_docker_engine import FakeContainer, FakeEngineState, serving_fake_engine
from tests.ports.inventory_helpers import Children

WEB_ID = "3f4e8c1a9b2d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f"
DB_ID = "a1b2c3d4e5f60718293a4b5c6d7e8f90112233445566778899aabbccddeeff00"
PTS_0 = 34816  # the tty_nr of /dev/pts/0 (major 136, minor 0)

# --- cgroup texts as machines write them ---------------------------------------------------------

POSTGRES_V2 = "0::/system.slice/system-postgresql.slice/postgresql@15-main.service\n"
USER_UNIT_V2 = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/vite-dev.service\n"
GNOME_TERMINAL_TAB = (
    "0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice/"
    "vte-spawn-2f1e0b6c-7c3d-4b1a-9d8e-3f5a6b7c8d9e.scope\n"
)
USER_MANAGER_ITSELF = "0::/user.slice/user-1000.slice/user@1000.service/init.scope\n"
SSH_SESSION = "0::/user.slice/user-1000.slice/session-4.scope\n"
DOCKER_SYSTEMD_DRIVER = f"0::/system.slice/docker-{WEB_ID}.scope\n"
DOCKER_CGROUPFS_V1 = (
    "".join(
        f"{n}:{controller}:/docker/{WEB_ID}\n"
        for n, controller in [
            (12, "cpuset"),
            (11, "memory"),
            (10, "devices"),
            (9, "pids"),
            (8, "blkio"),
            (7, "cpu,cpuacct"),
            (1, "name=systemd"),
        ]
    )
    + "0::/system.slice/containerd.service\n"
)
PODMAN_ROOTLESS = (
    f"0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{DB_ID}.scope/container\n"
)
PODMAN_CONMON = f"0::/machine.slice/libpod-conmon-{DB_ID}.scope\n"
KUBERNETES = (
    "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1c2e3f4a.slice/"
    f"cri-containerd-{WEB_ID}.scope\n"
)
NGINX_V1 = (
    "11:devices:/system.slice/nginx.service\n"
    "10:memory:/system.slice/nginx.service\n"
    "4:cpu,cpuacct:/system.slice/nginx.service\n"
    "1:name=systemd:/system.slice/nginx.service\n"
)
# Hybrid hierarchy (Ubuntu 20.04): v1 controllers, systemd's own v1 line and an empty-ish v2 line.
NGINX_HYBRID = (
    "12:memory:/system.slice/nginx.service\n"
    "1:name=systemd:/system.slice/nginx.service\n"
    "0::/system.slice/nginx.service\n"
)
GNOME_TERMINAL_SERVER_OLD = (
    "0::/user.slice/user-1000.slice/user@1000.service/gnome-terminal-server.service\n"
)
SSH_SERVICE_NO_PAM = "0::/system.slice/ssh.service\n"
NO_HIERARCHY = "0::/\n"


def node(
    pid: int,
    name: str,
    cmdline: str = "",
    *,
    ppid: int = 1,
    tty: int = 0,
    uid: int | None = 1000,
) -> ProcessNode:
    return ProcessNode(
        pid=pid,
        ppid=ppid,
        pgid=pid,
        sid=pid,
        tty=tty,
        name=name,
        cmdline=cmdline or name,
        create_time=1_700_000_000.0 + pid,
        uid=uid,
    )


# An Engine that is not there: a socket path nothing listens on.
@pytest.fixture
def no_engine(tmp_path: Path) -> EngineClient:
    return EngineClient(str(tmp_path / "absent.sock"))


def decide(
    root: ProcessNode,
    ancestors: list[ProcessNode],
    cgroup: str | None,
    engine: EngineClient,
    environ: dict[str, str] | None = None,
    platform: str = "linux",
) -> Manager:
    return decide_manager(
        root,
        ancestors,
        read_cgroup=lambda pid: cgroup if pid == root.pid else None,
        read_environ=lambda pid: environ if pid == root.pid else None,
        engine=engine,
        platform=platform,
    )


# --- cgroup parsing -------------------------------------------------------------------------------


def test_it_names_a_system_service_from_its_cgroup() -> None:
    assert service_unit_in_cgroup(POSTGRES_V2) == ("postgresql@15-main", False)
    assert service_unit_in_cgroup(NGINX_V1) == ("nginx", False)
    assert service_unit_in_cgroup(NGINX_HYBRID) == ("nginx", False)


def test_it_names_a_user_unit_but_not_the_user_manager_or_a_scope() -> None:
    assert service_unit_in_cgroup(USER_UNIT_V2) == ("vite-dev", True)
    assert service_unit_in_cgroup(USER_MANAGER_ITSELF) is None
    assert service_unit_in_cgroup(GNOME_TERMINAL_TAB) is None
    assert service_unit_in_cgroup(SSH_SESSION) is None
    assert service_unit_in_cgroup(NO_HIERARCHY) is None


def test_it_finds_containers_of_each_driver() -> None:
    assert container_in_cgroup(DOCKER_SYSTEMD_DRIVER) == ("docker", WEB_ID)
    assert container_in_cgroup(DOCKER_CGROUPFS_V1) == ("docker", WEB_ID)
    assert container_in_cgroup(PODMAN_ROOTLESS) == ("podman", DB_ID)
    assert container_in_cgroup(KUBERNETES) == ("container", WEB_ID)


def test_it_finds_no_container_on_the_host() -> None:
    # Podman's monitor lives beside the container, not in it.
    assert container_in_cgroup(PODMAN_CONMON) is None
    assert container_in_cgroup(POSTGRES_V2) is None
    # A 32-hex id, as this machine's own memory controller shows, is no container's.
    assert (
        container_in_cgroup("4:memory:/process_api/a670a85821a35583245b99bbadb0cef8\n0::/\n")
        is None
    )


# --- deciding the manager -------------------------------------------------------------------------


def test_it_stops_systemd_postgresql_with_systemctl(no_engine: EngineClient) -> None:
    postgres = node(812, "postgres", "/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql")
    manager = decide(postgres, [], POSTGRES_V2, no_engine)
    assert manager == Manager(
        "systemd", "postgresql@15-main", "systemctl stop postgresql@15-main", True
    )


def test_it_stops_a_user_unit_with_systemctl_user(no_engine: EngineClient) -> None:
    vite = node(4100, "node", "node /home/dev/app/node_modules/.bin/vite", ppid=1500)
    user_manager = node(1500, "systemd", "/usr/lib/systemd/systemd --user")
    manager = decide(vite, [user_manager], USER_UNIT_V2, no_engine)
    assert manager.kind == "systemd-user"
    assert manager.stop_command == "systemctl --user stop vite-dev"


def test_it_quotes_an_escaped_unit_name(no_engine: EngineClient) -> None:
    cgroup = "0::/system.slice/run-r3c1\\x2dweb.service\n"
    manager = decide(node(900, "python3"), [], cgroup, no_engine)
    assert manager.stop_command == "systemctl stop 'run-r3c1\\x2dweb'"


def test_a_shell_with_a_tty_in_a_terminal_tab_is_a_terminal(no_engine: EngineClient) -> None:
    flask = node(5001, "flask", "/home/dev/.venv/bin/flask run --debug", ppid=5000, tty=PTS_0)
    bash = node(5000, "bash", "bash", ppid=4000, tty=PTS_0)
    terminal = node(4000, "gnome-terminal-", "/usr/libexec/gnome-terminal-server", ppid=1500)
    manager = decide(flask, [bash, terminal], GNOME_TERMINAL_TAB, no_engine)
    assert manager == Manager("terminal", "", "Ctrl-C in the terminal that runs it", False)


def test_a_terminal_inside_a_service_cgroup_is_still_a_terminal(no_engine: EngineClient) -> None:
    # Before VTE gave each tab its own scope, shells lived in gnome-terminal-server.service.
    flask = node(5001, "flask", ppid=5000, tty=PTS_0)
    bash = node(5000, "bash", ppid=4000, tty=PTS_0)
    assert decide(flask, [bash], GNOME_TERMINAL_SERVER_OLD, no_engine).kind == "terminal"


def test_ssh_without_pam_systemd_is_not_the_ssh_service(no_engine: EngineClient) -> None:
    # `ssh host python -m http.server`: no tty, and the session lives in ssh.service's cgroup.
    server = node(7002, "python3", "python3 -m http.server", ppid=7001)
    session = node(7001, "sshd", "sshd: dev@notty", ppid=700)
    listener = node(700, "sshd", "sshd: /usr/sbin/sshd -D [listener]")
    manager = decide(server, [session, listener], SSH_SERVICE_NO_PAM, no_engine)
    assert manager.kind == "terminal"


def test_a_walk_that_ends_at_a_shell_is_a_terminal(no_engine: EngineClient) -> None:
    server = node(6001, "python3", ppid=6000)  # started with setsid: no controlling tty
    assert decide(server, [node(6000, "zsh")], SSH_SESSION, no_engine).kind == "terminal"


def test_a_cron_job_under_sh_is_not_a_terminal(no_engine: EngineClient) -> None:
    # A shell without a tty at the end of the walk is a terminal; cron's `sh -c` is not the end.
    server = node(8002, "python3", ppid=8001)
    shell = node(8001, "sh", "/bin/sh -c python3 serve.py", ppid=800)
    cron = node(800, "cron", "/usr/sbin/cron -f")
    assert decide(server, [shell, cron], SSH_SESSION, no_engine) == managers.NO_MANAGER


def test_a_daemon_nobody_restarts_has_no_manager(no_engine: EngineClient) -> None:
    daemon = node(9000, "redis-server", "redis-server *:6380")
    assert decide(daemon, [], SSH_SESSION, no_engine) == managers.NO_MANAGER
    assert decide(daemon, [], None, no_engine) == managers.NO_MANAGER


def test_pm2_names_the_app_from_its_environment(no_engine: EngineClient) -> None:
    app = node(3001, "node", "node /srv/api/index.js", ppid=3000)
    god = node(3000, "PM2 v5.3.1: God", "PM2 v5.3.1: God Daemon (/home/dev/.pm2)")
    # pm2 run as a systemd service (`pm2 startup`): the nearer manager, pm2, is the one to use.
    manager = decide(app, [god], "0::/system.slice/pm2-dev.service\n", no_engine, {"name": "api"})
    assert manager == Manager("pm2", "api", "pm2 stop api", True)


def test_pm2_without_a_readable_environment_does_not_say_stop_all(no_engine: EngineClient) -> None:
    app = node(3001, "node", ppid=3000)
    god = node(3000, "PM2 v5.3.1: God", "PM2 v5.3.1: God Daemon (/root/.pm2)")
    manager = decide(app, [god], None, no_engine, None)
    assert manager.kind == "pm2"
    assert "all" not in manager.stop_command.split()
    assert manager.stop_command == "pm2 stop <the app of pid 3001>"


def test_supervisord_names_the_program(no_engine: EngineClient) -> None:
    gunicorn = node(
        2001, "gunicorn", "/srv/venv/bin/python /srv/venv/bin/gunicorn app:app", ppid=2000
    )
    supervisord = node(2000, "supervisord", "/usr/bin/python3 /usr/bin/supervisord -n")
    environ = {"SUPERVISOR_PROCESS_NAME": "web", "SUPERVISOR_GROUP_NAME": "web"}
    manager = decide(
        gunicorn, [supervisord], "0::/system.slice/supervisor.service\n", no_engine, environ
    )
    assert manager == Manager("supervisord", "web", "supervisorctl stop web", True)


def test_supervisord_names_a_grouped_process_and_falls_back_to_the_name(
    no_engine: EngineClient,
) -> None:
    worker = node(2002, "celery", ppid=2000)
    supervisord = node(2000, "python3", "/usr/bin/python3 -m supervisor.supervisord -n")
    grouped = {"SUPERVISOR_PROCESS_NAME": "workers_00", "SUPERVISOR_GROUP_NAME": "workers"}
    assert decide(worker, [supervisord], None, no_engine, grouped).stop_command == (
        "supervisorctl stop workers:workers_00"
    )
    assert decide(worker, [supervisord], None, no_engine, None).name == "celery"


def test_launchd_on_macos_only(no_engine: EngineClient) -> None:
    agent = node(640, "node", "node server.js", uid=501)
    on_mac = decide(agent, [], None, no_engine, platform="darwin")
    assert on_mac.kind == "launchd"
    assert on_mac.stop_command == "launchctl bootout gui/501/<the label of pid 640>"
    assert decide(agent, [], None, no_engine, platform="linux").kind == "none"


def test_a_container_without_an_engine_is_named_by_its_id(no_engine: EngineClient) -> None:
    nginx = node(12000, "nginx", "nginx: master process nginx -g daemon off;", ppid=11990)
    shim = node(11990, "containerd-shim", "/usr/bin/containerd-shim-runc-v2 -namespace moby")
    manager = decide(nginx, [shim], DOCKER_SYSTEMD_DRIVER, no_engine)
    assert manager == Manager("docker", WEB_ID[:12], f"docker stop {WEB_ID[:12]}", True, WEB_ID)
    podman = decide(nginx, [], PODMAN_ROOTLESS, no_engine)
    assert (podman.kind, podman.stop_command) == ("podman", f"podman stop {DB_ID[:12]}")


def test_a_container_wins_over_a_supervisord_inside_it(no_engine: EngineClient) -> None:
    app = node(12001, "gunicorn", ppid=12000)
    supervisord = node(12000, "supervisord")
    assert decide(app, [supervisord], DOCKER_CGROUPFS_V1, no_engine).kind == "docker"


def test_a_kubernetes_container_is_a_container(no_engine: EngineClient) -> None:
    manager = decide(node(13000, "java"), [], KUBERNETES, no_engine)
    assert (manager.kind, manager.container_id, manager.restarts) == ("container", WEB_ID, True)


def test_docker_proxy_without_an_engine_finds_the_container_by_port(
    no_engine: EngineClient,
) -> None:
    proxy = node(
        11000,
        "docker-proxy",
        "/usr/bin/docker-proxy -proto tcp -host-ip 0.0.0.0 -host-port 8080 "
        "-container-ip 172.17.0.2 -container-port 80",
        ppid=1100,
    )
    dockerd = node(1100, "dockerd", "/usr/bin/dockerd -H fd://")
    manager = decide(proxy, [dockerd], "0::/system.slice/docker.service\n", no_engine)
    assert manager.kind == "docker"
    assert manager.stop_command == "docker stop $(docker ps -q --filter publish=8080/tcp)"


# --- the client, against the FAKE ENGINE ---------------------------------------------------------


@pytest.fixture
def fake_engine(tmp_path: Path) -> Iterator[tuple[EngineClient, FakeEngineState]]:
    path = str(tmp_path / "docker.sock")
    web_ports = [
        {"PrivatePort": 80, "Type": "tcp"},
        {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
    ]
    db_ports = [{"IP": "127.0.0.1", "PrivatePort": 53, "PublicPort": 5353, "Type": "udp"}]
    containers = [FakeContainer(WEB_ID, "web-1", web_ports), FakeContainer(DB_ID, "db", db_ports)]
    with serving_fake_engine(path, containers) as state:
        yield EngineClient(path), state


def test_the_client_names_a_container_by_id(
    fake_engine: tuple[EngineClient, FakeEngineState],
) -> None:
    engine, state = fake_engine
    assert engine.available()
    assert engine.container(WEB_ID) == ContainerInfo(WEB_ID, "web-1")
    assert engine.container("0" * 64) is None
    assert ("GET", f"/containers/{WEB_ID}/json") in state.requests


def test_the_client_finds_the_container_of_a_host_port(
    fake_engine: tuple[EngineClient, FakeEngineState],
) -> None:
    engine, _ = fake_engine
    assert engine.container_for_host_port(8080, "tcp") == ContainerInfo(WEB_ID, "web-1")
    assert engine.container_for_host_port(5353, "udp") == ContainerInfo(DB_ID, "db")
    assert engine.container_for_host_port(5353, "tcp") is None
    assert engine.container_for_host_port(80, "tcp") is None  # a private port is not published


def test_the_client_stops_a_container(fake_engine: tuple[EngineClient, FakeEngineState]) -> None:
    engine, state = fake_engine
    assert engine.stop("web-1", 3) == "stopped"
    assert ("POST", "/containers/web-1/stop?t=3") in state.requests
    assert engine.stop("web-1", 3) == "already stopped"
    with pytest.raises(EngineError, match="no such container: gone"):
        engine.stop("gone", 3)
    # A stopped container no longer publishes its port.
    assert engine.container_for_host_port(8080, "tcp") is None


def test_manager_of_names_containers_through_the_engine(
    fake_engine: tuple[EngineClient, FakeEngineState],
) -> None:
    engine, _ = fake_engine
    nginx = node(12000, "nginx")
    in_cgroup = decide(nginx, [], DOCKER_CGROUPFS_V1, engine)
    assert in_cgroup == Manager("docker", "web-1", "docker stop web-1", True, WEB_ID)
    proxy = node(
        11000, "docker-proxy", "docker-proxy -proto udp -host-ip 127.0.0.1 -host-port 5353"
    )
    assert decide(proxy, [], None, engine) == Manager("docker", "db", "docker stop db", True, DB_ID)


def test_an_engine_that_does_not_answer_is_no_engine(tmp_path: Path) -> None:
    # A socket that accepts connections but never replies: a hung dockerd.
    path = str(tmp_path / "hung.sock")
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        silent.bind(path)
        silent.listen(8)
        engine = EngineClient(path)
        assert engine.container(WEB_ID) is None
        assert not engine.available()
        with pytest.raises(EngineError, match="no Docker Engine answers"):
            engine.stop(WEB_ID, 0)
    finally:
        silent.close()


def test_a_missing_socket_is_no_engine(no_engine: EngineClient) -> None:
    assert not no_engine.available()
    assert no_engine.container_for_host_port(8080) is None
    with pytest.raises(EngineError, match=r"no Docker Engine answers at .*absent\.sock"):
        no_engine.stop("web-1", 10)


def test_docker_host_counts_only_as_a_unix_socket() -> None:
    assert engine_socket_path("unix:///run/user/1000/docker.sock") == "/run/user/1000/docker.sock"
    assert engine_socket_path("tcp://10.0.0.5:2375") == DEFAULT_SOCKET
    assert engine_socket_path("ssh://dev@build-host") == DEFAULT_SOCKET
    assert engine_socket_path("") == DEFAULT_SOCKET


# --- the cache ------------------------------------------------------------------------------------


class CountingCgroupReader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.reads = 0

    def __call__(self, pid: int) -> str:
        self.reads += 1
        return self.text


def test_the_cache_reads_each_process_once(no_engine: EngineClient) -> None:
    cache = ManagerCache()
    reader = CountingCgroupReader(POSTGRES_V2)
    root = node(812, "postgres")
    for _ in range(3):
        manager = manager_of(root, [], read_cgroup=reader, engine=no_engine, cache=cache)
        assert manager.kind == "systemd"
    assert reader.reads == 1
    # Reparented (its parent died): a new chain is a new question.
    manager_of(root, [node(700, "bash")], read_cgroup=reader, engine=no_engine, cache=cache)
    assert reader.reads == 2


def test_the_cache_asks_again_for_a_container_it_could_not_name(no_engine: EngineClient) -> None:
    now = [1000.0]
    cache = ManagerCache(clock=lambda: now[0])
    reader = CountingCgroupReader(DOCKER_SYSTEMD_DRIVER)
    root = node(12000, "nginx")
    manager_of(root, [], read_cgroup=reader, engine=no_engine, cache=cache)
    manager_of(root, [], read_cgroup=reader, engine=no_engine, cache=cache)
    assert reader.reads == 1
    now[0] += managers.NAMELESS_RETRY_AFTER
    manager_of(root, [], read_cgroup=reader, engine=no_engine, cache=cache)
    assert reader.reads == 2


def test_the_cache_stays_bounded(no_engine: EngineClient) -> None:
    cache = ManagerCache(max_entries=10)
    for pid in range(100, 130):
        manager_of(node(pid, "x"), [], read_cgroup=lambda _pid: None, engine=no_engine, cache=cache)
    assert len(cache) <= 10


# --- this machine ---------------------------------------------------------------------------------


def _real_node(pid: int) -> ProcessNode:
    raw = Path(f"/proc/{pid}/stat").read_bytes()
    close = raw.rfind(b")")
    fields = raw[close + 2 :].split()
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    return ProcessNode(
        pid=pid,
        ppid=int(fields[1]),
        pgid=int(fields[2]),
        sid=int(fields[3]),
        tty=int(fields[4]),
        name=raw[raw.find(b"(") + 1 : close].decode(errors="replace"),
        cmdline=" ".join(arg.decode(errors="replace") for arg in argv if arg),
        create_time=float(fields[19]),
        uid=os.stat(f"/proc/{pid}").st_uid,
    )


def _real_chain(pid: int) -> tuple[ProcessNode, list[ProcessNode]]:
    root = _real_node(pid)
    ancestors: list[ProcessNode] = []
    ppid = root.ppid
    while ppid > 1:
        try:
            parent = _real_node(ppid)
        except OSError:
            break  # the walk ends where /proc stops answering
        ancestors.append(parent)
        ppid = parent.ppid
    return root, ancestors


def test_it_reads_this_machines_own_cgroup_and_process_chain() -> None:
    text = read_cgroup(os.getpid())
    assert text is not None
    assert all(line.count(":") >= 2 for line in text.splitlines()), text
    root, ancestors = _real_chain(os.getpid())
    manager = manager_of(root, ancestors, cache=None)
    assert manager.kind in KINDS
    # The test runner is no systemd service here, whatever else this machine says it is.
    assert manager.kind != "systemd", (manager, text)


def test_it_reads_a_real_childs_supervisor_environment(children: Children) -> None:
    env = {**os.environ, "SUPERVISOR_PROCESS_NAME": "api", "SUPERVISOR_GROUP_NAME": "api"}
    proc, _ = children.start("import time; print('ready', flush=True); time.sleep(60)", env=env)
    assert (read_environ(proc.pid) or {}).get("SUPERVISOR_PROCESS_NAME") == "api"
    root = _real_node(proc.pid)
    supervisord = node(os.getpid(), "supervisord", "/usr/bin/python3 /usr/bin/supervisord -n")
    manager = manager_of(root, [supervisord], cache=None)
    assert manager == Manager("supervisord", "api", "supervisorctl stop api", True)


def test_a_gone_process_has_no_cgroup_or_environment() -> None:
    gone = 2**22 + 1  # above the kernel's pid_max ceiling: never a live pid
    assert read_cgroup(gone) is None
    assert read_environ(gone) is None
