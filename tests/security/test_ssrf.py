"""Checks reach this machine, and further only where an admin allows.

No test sends traffic beyond loopback: refused addresses are refused before any socket opens
(the `connects` guard records every connect and stops any beyond loopback before the system
call), and allowed non-local addresses are only ever handed to a recording connector.
"""

from __future__ import annotations

import datetime
import ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from console.foundation import runtime_settings
from health import outbound
from health.probes import http as http_probe
from health.probes import run_probe
from health.probes.netpolicy import (
    LOCAL_ONLY,
    AddressRefused,
    NetworkPolicy,
    open_connection,
    own_addresses,
    parse_networks,
    resolve_allowed,
)
from tests import netguard
from tests.health import conftest as health_fixtures
from tests.health.servers import ControlledHTTP, serve_in_background
from tests.outbound_seams import (
    METADATA,
    SETTING,
    RecordingConnector,
    Resolver,
    foreign_address,
    policy,
)

connects = netguard.connects  # the fixtures, by their names here
http_server = health_fixtures.http_server
echo_server = health_fixtures.echo_server


class Redirecting:
    """A loopback HTTP server whose every answer is a 302 to `location`."""

    def __init__(self, location: str):
        owner = self
        self.location = location

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                self.send_response(302)
                self.send_header("Location", owner.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/start"
        serve_in_background(self.server)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- the policy: which addresses ----------------------------------------------------------


def test_it_refuses_the_metadata_address_and_names_it_and_the_setting():
    reason = LOCAL_ONLY.refusal(METADATA)
    assert reason is not None
    assert METADATA in reason
    assert SETTING in reason
    assert "Security page" in reason


def test_it_refuses_an_address_off_this_machine_by_default_naming_where_to_allow_it():
    reason = policy().refusal("10.1.2.3")
    assert reason == (
        "10.1.2.3 is not on this machine; an admin can allow it in CONSOLE_CHECK_NETWORKS "
        "or on the Security page (Check networks)"
    )
    assert policy("10.0.0.0/8").refusal("10.1.2.3") is None


def test_it_allows_loopback_and_this_machines_own_addresses():
    for address in ("127.0.0.1", "127.8.9.10", "::1", "0.0.0.0"):
        assert LOCAL_ONLY.refusal(address) is None, address
    own = [a for a in own_addresses() if not a.is_loopback and not a.is_link_local]
    if own:  # a machine with a network address: the default policy allows it
        assert LOCAL_ONLY.refusal(own[0]) is None
    assert policy().refusal("192.0.2.77") is not None  # the seam: this machine has none


@pytest.mark.parametrize(
    "address",
    [METADATA, "169.254.1.1", "fe80::1", "fe80::1%eth0", "fd00:ec2::254", "100.100.100.200"],
)
def test_it_refuses_link_local_and_metadata_even_when_every_network_is_allowed(address):
    wide = policy("0.0.0.0/0", "::/0", "169.0.0.0/8", "100.64.0.0/10")
    reason = wide.refusal(address)
    assert reason is not None
    assert "link-local or cloud metadata" in reason
    assert address.split("%")[0] in reason


def test_it_allows_metadata_only_when_listed_explicitly():
    assert policy("169.254.169.254").refusal(METADATA) is None
    assert policy("169.254.0.0/16").refusal(METADATA) is None
    assert policy("169.254.169.254/32").refusal("169.254.169.253") is not None
    assert policy("100.100.100.200/32").refusal("100.100.100.200") is None
    assert policy("fd00:ec2::254").refusal("fd00:ec2::254") is None
    assert policy("fd00::/8").refusal("fd00:ec2::254") is not None  # wider: does not name it


def test_it_judges_an_ipv4_mapped_address_as_its_ipv4_address():
    assert policy("::/0").refusal("::ffff:169.254.169.254") is not None
    assert METADATA in policy("::/0").refusal("::ffff:169.254.169.254")
    assert policy("::/0").refusal("::ffff:10.1.2.3") is not None  # ::/0 is not 10.0.0.0/8
    assert policy("10.0.0.0/8").refusal("::ffff:10.1.2.3") is None
    assert policy().refusal("::ffff:127.0.0.1") is None


def test_it_refuses_metadata_carried_in_nat64_and_6to4_addresses():
    wide = policy("::/0")
    assert wide.refusal("64:ff9b::a9fe:a9fe") is not None  # NAT64 of 169.254.169.254
    assert wide.refusal("2002:a9fe:a9fe::1") is not None  # 6to4 of 169.254.169.254
    assert policy("64:ff9b::a9fe:a9fe/128").refusal("64:ff9b::a9fe:a9fe") is None


# -- resolution and connection ------------------------------------------------------------


async def test_it_connects_to_the_address_it_checked_never_resolving_again():
    resolver = Resolver(service_test=[["127.0.0.1"]])
    connector = RecordingConnector()
    await open_connection("service.test", 5432, policy(resolver=resolver), connector=connector)
    assert resolver.lookups == ["service.test"]
    assert [(host, port) for host, port, _ in connector.calls] == [("127.0.0.1", 5432)]


async def test_it_refuses_a_name_whose_addresses_include_a_refused_one_before_connecting():
    resolver = Resolver(mixed_test=[["127.0.0.1", METADATA]])
    connector = RecordingConnector()
    with pytest.raises(AddressRefused) as refused:
        await open_connection("mixed.test", 80, policy(resolver=resolver), connector=connector)
    assert str(refused.value).startswith("mixed.test: 169.254.169.254 is")
    assert connector.calls == []


async def test_it_hands_an_explicitly_listed_metadata_address_to_the_connector():
    connector = RecordingConnector()
    resolver = Resolver(metadata_test=[[METADATA]])
    listed = policy("169.254.169.254/32", resolver=resolver)
    await open_connection("metadata.test", 80, listed, connector=connector)
    assert [host for host, _port, _ in connector.calls] == [METADATA]
    with pytest.raises(AddressRefused):
        await open_connection("metadata.test", 80, policy("0.0.0.0/0", resolver=resolver))


async def test_it_refuses_ten_dot_by_default_and_allows_it_when_listed():
    target = foreign_address()
    connector = RecordingConnector()
    with pytest.raises(AddressRefused, match=SETTING):
        await open_connection(target, 6379, LOCAL_ONLY, connector=connector)
    assert connector.calls == []
    assert await resolve_allowed(target, 6379, policy("10.0.0.0/8")) == [target]
    await open_connection(target, 6379, policy("10.0.0.0/8"), connector=connector)
    assert [host for host, _port, _ in connector.calls] == [target]


async def test_it_keeps_the_name_for_tls_when_connecting_to_the_address():
    connector = RecordingConnector()
    resolver = Resolver(db_test=[["127.0.0.1"]])
    context = ssl.create_default_context()
    await open_connection(
        "db.test", 5432, policy(resolver=resolver), connector=connector, ssl=context
    )
    host, _port, kwargs = connector.calls[0]
    assert host == "127.0.0.1"
    assert kwargs["server_hostname"] == "db.test"


async def test_it_connects_ipv4_mapped_literals_to_the_ipv4_address():
    assert await resolve_allowed("::ffff:127.0.0.1", 80, LOCAL_ONLY) == ["127.0.0.1"]
    assert await resolve_allowed("[::1]", 80, LOCAL_ONLY) == ["::1"]


# -- the probes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "target"),
    [
        ("http", {"url": "http://169.254.169.254/latest/meta-data/"}),
        ("http", {"url": "http://[::ffff:169.254.169.254]/latest/meta-data/"}),
        ("tcp", {"host": METADATA, "port": 80}),
        ("redis", {"host": METADATA, "port": 6379}),
    ],
)
async def test_it_refuses_a_literal_metadata_target_before_any_socket(kind, target, connects):
    result = await run_probe(kind, target, 5, policy=policy("0.0.0.0/0", "::/0"))
    assert not result.ok
    assert METADATA in result.detail
    assert SETTING in result.detail
    assert connects.addresses == []


async def test_it_refuses_ten_dot_in_a_probe_by_default_and_tries_it_when_allowed(connects):
    target = {"host": foreign_address(), "port": 6379}
    refused = await run_probe("tcp", target, 5)
    assert not refused.ok
    assert SETTING in refused.detail
    assert connects.addresses == []
    # Allowed: the probe goes to the address (the guard stops it before the system call).
    tried = await run_probe("tcp", target, 5, policy=policy("10.0.0.0/8"))
    assert not tried.ok
    assert connects.hosts == [target["host"]]


async def test_it_checks_every_run_after_resolution_so_a_rebound_name_is_refused(
    echo_server, connects
):
    resolver = Resolver(rebind_test=[["127.0.0.1"], [METADATA]])
    rebinding = policy(resolver=resolver)
    target = {"host": "rebind.test", "port": echo_server.port, "send": "hi", "expect": "echo:hi"}
    first = await run_probe("tcp", target, 5, policy=rebinding)
    assert first.ok, first.detail
    second = await run_probe("tcp", target, 5, policy=rebinding)
    assert not second.ok
    assert second.detail.startswith("rebind.test: 169.254.169.254 is a link-local")
    assert resolver.lookups == ["rebind.test", "rebind.test"]  # one lookup per run, no more
    assert connects.addresses == [("127.0.0.1", echo_server.port)]


async def test_it_checks_every_http_run_after_resolution(http_server, connects):
    resolver = Resolver(rebind_test=[["127.0.0.1"], [METADATA]])
    rebinding = policy(resolver=resolver)
    target = {"url": f"http://rebind.test:{http_server.port}/health"}
    assert (await run_probe("http", target, 5, policy=rebinding)).ok
    second = await run_probe("http", target, 5, policy=rebinding)
    assert not second.ok
    assert METADATA in second.detail
    assert connects.addresses == [("127.0.0.1", http_server.port)]


async def test_it_refuses_a_redirect_hop_to_the_metadata_address(connects):
    server = Redirecting("http://169.254.169.254/latest/meta-data/iam/")
    try:
        target = {"url": server.url, "follow_redirects": True}
        result = await run_probe("http", target, 5, policy=policy("0.0.0.0/0"))
        assert not result.ok
        assert METADATA in result.detail
        assert SETTING in result.detail
        assert connects.hosts == ["127.0.0.1"]  # the first hop only
        reported = await run_probe("http", {"url": server.url}, 5)
        assert not reported.ok
        assert "HTTP 302" in reported.detail  # not followed unless the check asks
    finally:
        server.stop()


async def test_it_refuses_a_redirect_hop_to_a_name_that_resolves_to_a_refused_address(connects):
    server = Redirecting("http://internal.test/admin")
    try:
        resolver = Resolver(internal_test=[["10.20.30.40"]])
        target = {"url": server.url, "follow_redirects": True}
        result = await run_probe("http", target, 5, policy=policy(resolver=resolver))
        assert not result.ok
        assert result.detail.startswith("internal.test: 10.20.30.40 is not on this machine")
        assert connects.hosts == ["127.0.0.1"]
    finally:
        server.stop()


async def test_it_follows_a_redirect_hop_to_an_allowed_target(http_server, connects):
    server = Redirecting(f"http://localhost.test:{http_server.port}/health")
    try:
        resolver = Resolver(localhost_test=[["127.0.0.1"]])
        target = {"url": server.url, "follow_redirects": True}
        result = await run_probe("http", target, 5, policy=policy(resolver=resolver))
        assert result.ok, result.detail
        assert resolver.lookups == ["localhost.test"]
        assert len(connects.addresses) == 2
    finally:
        server.stop()


async def test_it_reports_a_name_that_does_not_resolve_as_a_connection_failure(connects):
    result = await run_probe(
        "http", {"url": "http://nowhere.test/"}, 5, policy=policy(resolver=Resolver())
    )
    assert not result.ok
    assert "connection failed" in result.detail
    assert connects.addresses == []


async def test_it_shares_http_clients_per_policy():
    local, wider = policy(), policy("10.0.0.0/8")
    assert http_probe._client(True, False, local) is http_probe._client(True, False, policy())
    assert http_probe._client(True, False, local) is not http_probe._client(True, False, wider)
    await http_probe.close_clients()


# -- TLS: connected to the address, verified against the name -----------------------------


def _certificate_for(directory: Path, *names: str) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    path = directory / "server.pem"
    path.write_bytes(
        certificate.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.fixture
def tls_named(tmp_path):
    """An HTTPS server on 127.0.0.1 whose certificate names localhost and portside.test;
    `server_names` records the SNI of every handshake."""
    pem = _certificate_for(tmp_path, "localhost", "portside.test")
    server_names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pem)
    context.sni_callback = lambda _sock, name, _ctx: server_names.append(name)
    server = ControlledHTTP(tls_context=context)
    client_context = ssl.create_default_context(cafile=str(pem))
    try:
        yield server, client_context, server_names
    finally:
        server.stop()


async def _get(url: str, policy_in_force: NetworkPolicy, context: ssl.SSLContext) -> int:
    transport = http_probe.PolicyTransport(
        policy_in_force, verify=context, limits=httpx.Limits(max_keepalive_connections=0)
    )
    async with httpx.AsyncClient(transport=transport, trust_env=False) as client:
        return (await client.get(url, timeout=5)).status_code


async def test_it_verifies_https_against_the_name_while_connecting_to_the_address(
    tls_named, connects
):
    server, context, server_names = tls_named
    resolver = Resolver(portside_test=[["127.0.0.1"]])
    url = f"https://portside.test:{server.port}/health"
    assert await _get(url, policy(resolver=resolver), context) == 200
    assert server_names == ["portside.test"]  # SNI carried the name
    assert connects.addresses == [("127.0.0.1", server.port)]  # the socket went to the address


async def test_it_verifies_https_for_localhost_through_the_system_resolver(tls_named, connects):
    server, context, server_names = tls_named
    assert await _get(f"https://localhost:{server.port}/health", LOCAL_ONLY, context) == 200
    assert server_names[-1] == "localhost"
    assert set(connects.hosts) <= {"127.0.0.1", "::1"}


async def test_it_still_refuses_a_certificate_for_another_name(tls_named):
    server, context, _names = tls_named
    resolver = Resolver(other_test=[["127.0.0.1"]])
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        await _get(f"https://other.test:{server.port}/", policy(resolver=resolver), context)


# -- the settings, where an admin edits them ----------------------------------------------


def test_it_validates_check_networks_in_the_settings_api(db, api, admin_user):
    outbound.forget()
    from console.foundation import tokens

    token = tokens.issue_pair(admin_user)["access"]
    saved = api("patch", "/api/v1/security/settings", token, {"check_networks": "10.0.0.0/8, ::1"})
    assert saved.status_code == 200
    assert saved.json()["check_networks"] == "10.0.0.0/8\n::1/128"
    bad = api("patch", "/api/v1/security/settings", token, {"check_networks": "intranet"})
    assert bad.status_code == 422
    assert "check_networks" in bad.json()["detail"]
    assert outbound.policy().refusal(foreign_address()) is None


def test_it_edits_check_networks_on_the_security_page(db, client, admin_user):
    outbound.forget()
    client.force_login(admin_user)
    page = client.get("/security/")
    assert "Check networks" in page.content.decode()
    row = runtime_settings.current()
    form = {field: getattr(row, field) for field in runtime_settings.EDITABLE}
    form.update(command_checks="", check_networks="10.0.0.0/8")
    assert client.post("/security/", form).status_code == 302
    assert runtime_settings.current().check_networks == "10.0.0.0/8"
    assert outbound.policy().refusal(foreign_address()) is None
    form.update(check_networks="intranet")
    refused = client.post("/security/", form)
    assert refused.status_code == 422
    assert "not a network" in refused.content.decode()


def test_the_networks_setting_reads_what_people_write_and_names_what_it_cannot():
    # A host address with its prefix (as `ip addr` prints it) means its network.
    assert [str(n) for n in parse_networks("10.1.2.3/8, 192.168.7.0/24\nfd00::1")] == [
        "10.0.0.0/8",
        "192.168.7.0/24",
        "fd00::1/128",
    ]
    assert parse_networks("  ") == ()
    with pytest.raises(ValueError) as raised:
        parse_networks("10.0.0.0/8 lan")
    assert str(raised.value) == "'lan' is not a network (write it like 10.0.0.0/8)"
