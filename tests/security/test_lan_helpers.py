"""LAN mode's helpers in-process: which addresses and names it lets in, its bind, its certificate.

`serve --lan` itself is tested end to end in test_lan.py; these pin what it is built from, so a
wrong address list (the allowed Host names) or a readable key fails here in milliseconds.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import stat
import subprocess
from types import SimpleNamespace

import pytest
from cryptography import x509

from console.security import lan


def _nic(family: int, address: str) -> SimpleNamespace:
    return SimpleNamespace(family=family, address=address)


@pytest.fixture
def interfaces(monkeypatch):
    import psutil

    fake = {
        "lo": [_nic(socket.AF_INET, "127.0.0.1"), _nic(socket.AF_INET6, "::1")],
        "eth0": [
            _nic(psutil.AF_LINK, "52:54:00:12:34:56"),
            _nic(socket.AF_INET, "192.0.2.20"),
            _nic(socket.AF_INET6, "fe80::1%eth0"),
            _nic(socket.AF_INET6, "2001:db8::5"),
        ],
        "eth1": [
            _nic(socket.AF_INET, "not-an-address"),  # skipped, and the rest still read
            _nic(socket.AF_INET, "192.0.2.20"),  # the same address on a second interface
            _nic(socket.AF_INET, "169.254.7.7"),
            _nic(socket.AF_INET, "0.0.0.0"),
            _nic(socket.AF_INET, "192.0.2.3"),
        ],
    }
    monkeypatch.setattr(psutil, "net_if_addrs", lambda: fake)


def test_machine_addresses_leave_out_loopback_link_local_and_unspecified(interfaces):
    assert lan.machine_addresses() == ["192.0.2.3", "192.0.2.20", "2001:db8::5"]


def test_host_names_bracket_ipv6_and_add_the_machine_s_name_once(monkeypatch):
    monkeypatch.setattr(socket, "gethostname", lambda: "devbox")
    assert lan.host_names(["192.0.2.3", "2001:db8::5"]) == ["192.0.2.3", "[2001:db8::5]", "devbox"]
    assert lan.host_names(["devbox"]) == ["devbox"]


@pytest.mark.parametrize("name", ["localhost", ""])
def test_host_names_never_add_localhost_or_an_empty_name(monkeypatch, name):
    monkeypatch.setattr(socket, "gethostname", lambda: name)
    assert lan.host_names(["192.0.2.3"]) == ["192.0.2.3"]


def _ipv6_works() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_the_ipv6_bind_is_v6_only_listening_and_inheritable():
    with socket.socket() as ours:
        ours.bind(("127.0.0.1", 0))
        port = ours.getsockname()[1]
    if not _ipv6_works():
        pytest.skip("IPv6 is off on this machine")
    sock = lan.bind_ipv6_any(port)
    assert sock is not None
    try:
        assert sock.family == socket.AF_INET6 and sock.getsockname()[:2] == ("::", port)
        assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
        assert sock.get_inheritable()
        with socket.create_connection(("::1", port), timeout=5):
            pass  # it listens
        assert lan.bind_ipv6_any(port) is None  # taken: None, not an exception
    finally:
        sock.close()


def _cert(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _san(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return (
        set(names.get_values_for_type(x509.DNSName)),
        {str(ip) for ip in names.get_values_for_type(x509.IPAddress)},
    )


def test_the_certificate_names_loopback_and_the_lan_and_its_key_is_private(tmp_path):
    directory = tmp_path / "var" / "tls"  # made with its parents, as var/ may not exist yet
    cert_path, key_path, fingerprint = lan.self_signed_certificate(directory, ["192.0.2.3"])
    assert (cert_path, key_path) == (directory / "cert.pem", directory / "key.pem")
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    cert = _cert(cert_path)
    # What a browser's certificate warning names.
    assert cert.subject.rfc4514_string() == "CN=Portside console" == cert.issuer.rfc4514_string()
    assert _san(cert) == ({"localhost"}, {"127.0.0.1", "::1", "192.0.2.3"})
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca is False
    now = datetime.datetime.now(datetime.UTC)
    assert cert.not_valid_before_utc <= now < cert.not_valid_after_utc
    assert datetime.timedelta(days=364) < cert.not_valid_after_utc - now
    assert cert.not_valid_after_utc - now <= datetime.timedelta(days=365)
    # The fingerprint `serve` prints is the one openssl shows for the file.
    openssl = subprocess.run(
        ["openssl", "x509", "-in", str(cert_path), "-noout", "-fingerprint", "-sha256"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert openssl.strip().split("=", 1)[1] == fingerprint


def test_the_certificate_is_kept_while_it_covers_the_addresses(tmp_path):
    directory = tmp_path / "tls"
    first = lan.self_signed_certificate(directory, ["192.0.2.3", "2001:db8::5"])
    assert lan.self_signed_certificate(directory, ["192.0.2.3", "2001:db8::5"]) == first
    assert lan.self_signed_certificate(directory, ["192.0.2.3"]) == first
    remade = lan.self_signed_certificate(directory, ["192.0.2.9"])
    assert remade[2] != first[2]
    assert "192.0.2.9" in _san(_cert(remade[0]))[1]


def test_an_expired_certificate_is_remade(tmp_path):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    directory = tmp_path / "tls"
    cert_path, key_path, _fp = lan.self_signed_certificate(directory, [])
    # The same names, but its year is over.
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    old = _cert(cert_path)
    now = datetime.datetime.now(datetime.UTC)
    expired = (
        x509.CertificateBuilder()
        .subject_name(old.subject)
        .issuer_name(old.issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=400))
        .not_valid_after(now - datetime.timedelta(days=1))
        .add_extension(
            old.extensions.get_extension_for_class(x509.SubjectAlternativeName).value,
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(expired.public_bytes(serialization.Encoding.PEM))
    stale = lan.fingerprint(cert_path)
    _cert_path, _key, fresh = lan.self_signed_certificate(directory, [])
    assert fresh != stale and _cert(cert_path).not_valid_after_utc > now


def test_addresses_in_the_certificate_are_ip_entries_not_names(tmp_path):
    cert_path, _key, _fp = lan.self_signed_certificate(tmp_path, ["2001:db8::5"])
    dns, ips = _san(_cert(cert_path))
    assert "2001:db8::5" in ips and "2001:db8::5" not in dns
    assert all(ipaddress.ip_address(ip) for ip in ips)


def test_a_certificate_without_its_key_is_remade(tmp_path):
    _cert, key_path, first = lan.self_signed_certificate(tmp_path, ["192.0.2.3"])
    key_path.unlink()
    _cert_path, key_path, again = lan.self_signed_certificate(tmp_path, ["192.0.2.3"])
    assert key_path.exists() and again != first


@pytest.fixture
def machine_in_tokyo(monkeypatch):
    """The process's local time zone set nine hours ahead of UTC, and put back after."""
    import time

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_the_lan_certificate_is_valid_now_whatever_the_machines_time_zone(
    tmp_path, machine_in_tokyo
):
    cert_path, _key, _fingerprint = lan.self_signed_certificate(tmp_path, ["192.0.2.7"])
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    now = datetime.datetime.now(datetime.UTC)
    assert cert.not_valid_before_utc <= now < cert.not_valid_after_utc
    assert now - cert.not_valid_before_utc < datetime.timedelta(minutes=10)
