"""Where a check may connect: this machine, and further only where an admin allows (no Django).

A check's target is something a user typed, and the console runs it with its own network
position: without a policy an operator could read a cloud metadata service (instance
credentials), or scan the LAN through the check results. So every connection a probe makes is
judged after name resolution, and the probe connects to the exact address that was judged:
resolving again to connect would let a DNS server answer 127.0.0.1 to the check and
169.254.169.254 to the connect (DNS rebinding).

- Allowed always: loopback (127.0.0.0/8, ::1) and this machine's own addresses.
- Allowed when an admin lists them: the extra networks (`CONSOLE_CHECK_NETWORKS`, or Check
  networks on the Security page).
- Link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254,
  100.100.100.200) only when listed explicitly: by a network within those ranges or by the
  address itself. 0.0.0.0/0 or 10.0.0.0/8 widen the reach for ordinary addresses and never
  unlock these, because nobody writing "the whole internet" means "and the instance's keys".
- An IPv4-mapped IPv6 address (::ffff:169.254.169.254) is judged as its IPv4 address, and an
  IPv6 address that carries an IPv4 one for a translator (NAT64 64:ff9b::/96, 6to4 2002::/16)
  is sensitive when the IPv4 one is.

A name is refused when ANY of its addresses is refused, rather than quietly using the allowed
ones: the result of a check must not depend on which address a resolver lists first, the check
made when the check is saved then means the same as the one made at each run, and a name that
mixes a refused address with an allowed one is what a rebinding attack or a mistake looks like,
which the user should see. (Connecting only to checked addresses is what makes either choice
safe; this one is also predictable.)
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from health.probes.results import ProbeFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

WHERE_TO_ALLOW = "CONSOLE_CHECK_NETWORKS or on the Security page (Check networks)"

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
# Link-local ranges and the metadata services reachable from inside a cloud instance: AWS,
# GCP, Azure, DigitalOcean and Oracle answer on 169.254.169.254, AWS also on fd00:ec2::254
# (IPv6 instances), Alibaba Cloud on 100.100.100.200.
SENSITIVE = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
    ipaddress.ip_network("100.100.100.200/32"),
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIXTOFOUR = ipaddress.ip_network("2002::/16")

# psutil.net_if_addrs() costs about 0.2 ms here: cheap, but not per connection of 2,000
# checks. Addresses rarely change; an address we do not know yet is looked up again at most
# once a second, so a new interface is recognised at once without a refusal costing a scan.
OWN_ADDRESSES_MAX_AGE_S = 30.0
OWN_ADDRESSES_RETRY_S = 1.0


class AddressRefused(ProbeFailed):
    """The policy refused an address; the message names it and where to allow it."""


def parse_ip(text: str) -> IPAddress | None:
    """An address from a host field or a resolver ("[::1]", "fe80::1%eth0"), or None for a name.

    The zone of a scoped IPv6 address is dropped: it picks the interface, not the address."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:a.b.c.d reaches a.b.c.d: judge it as a.b.c.d
    return address


def _sensitive_range(address: IPAddress) -> IPNetwork | None:
    """The link-local or metadata range `address` is in, written in the address's own family:
    for a NAT64 or 6to4 address, the IPv6 range that carries the IPv4 one."""
    for network in SENSITIVE:
        if network.version == address.version and address in network:
            return network
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address in _NAT64:
        embedded, base, shift = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), _NAT64, 0
    elif (sixtofour := address.sixtofour) is not None:
        embedded, base, shift = sixtofour, _SIXTOFOUR, 80
    else:
        return None
    for network in SENSITIVE:
        if network.version == 4 and embedded in network:
            start = int(base.network_address) | (int(network.network_address) << shift)
            return ipaddress.IPv6Network((start, base.prefixlen + network.prefixlen))
    return None


class _OwnAddresses:
    """This machine's addresses, read from the interfaces and kept for a while."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._addresses: frozenset[IPAddress] = frozenset()
        self._read_at = float("-inf")

    def __call__(self) -> frozenset[IPAddress]:
        if time.monotonic() - self._read_at > OWN_ADDRESSES_MAX_AGE_S:
            self.refresh()
        return self._addresses

    def contains(self, address: IPAddress) -> bool:
        if address in self():
            return True
        if time.monotonic() - self._read_at > OWN_ADDRESSES_RETRY_S:
            self.refresh()
            return address in self._addresses
        return False

    def refresh(self) -> None:
        addresses = frozenset(_read_interface_addresses())
        with self._lock:
            self._addresses, self._read_at = addresses, time.monotonic()


def _read_interface_addresses() -> Iterable[IPAddress]:
    try:
        import psutil

        raw = [
            entry.address
            for entries in psutil.net_if_addrs().values()
            for entry in entries
            if entry.family in (socket.AF_INET, socket.AF_INET6)
        ]
    except (ImportError, OSError):  # no psutil or no permission: what the host name resolves to
        try:
            raw = [str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None)]
        except OSError:
            raw = []
    for text in raw:
        if (address := parse_ip(str(text))) is not None:
            yield address


own_addresses = _OwnAddresses()


def _is_own_address(address: IPAddress) -> bool:
    return own_addresses.contains(address)


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """CIDRs or addresses, separated by commas, spaces or lines; ValueError names a bad one."""
    networks = []
    for part in text.replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"{part!r} is not a network (write it like 10.0.0.0/8)") from None
    return tuple(networks)


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses of `host`, through the loop's getaddrinfo (a thread), in the system's order."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """The networks a probe may reach besides loopback and this machine's own addresses.

    Hashable and compared by value, so that the HTTP probe can share one client per policy.
    `resolver` and `is_own_address` are seams for tests (a resolver that answers 127.0.0.1
    and then 169.254.169.254; a machine with no addresses, so that "10.x is refused" holds
    on a machine that has one); they take part in the comparison, so a test's policy never
    shares a client with the real one."""

    extra_networks: tuple[IPNetwork, ...] = ()
    resolver: Resolver = field(default=system_resolver, repr=False)
    is_own_address: Callable[[IPAddress], bool] = field(default=_is_own_address, repr=False)

    @classmethod
    def from_text(cls, *texts: str, **kwargs: Any) -> NetworkPolicy:
        networks: list[IPNetwork] = []
        for text in texts:
            networks += [n for n in parse_networks(text or "") if n not in networks]
        return cls(tuple(networks), **kwargs)

    def refusal(self, ip: str | IPAddress) -> str | None:
        """None when a probe may connect to `ip`, else why not (naming it and the setting)."""
        address = parse_ip(ip) if isinstance(ip, str) else ip
        if address is None:
            return f"{ip!r} is not an IP address"
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if (sensitive := _sensitive_range(address)) is not None:
            return self._sensitive_refusal(address, sensitive)
        if address.is_loopback or address.is_unspecified:
            return None  # 0.0.0.0 and :: reach this machine's own listeners
        if any(address.version == n.version and address in n for n in self.extra_networks):
            return None
        if self.is_own_address(address):
            return None
        return f"{address} is not on this machine; an admin can allow it in {WHERE_TO_ALLOW}"

    def _sensitive_refusal(self, address: IPAddress, sensitive: IPNetwork) -> str | None:
        # Only a network that is itself inside the sensitive range unlocks an address in it:
        # 0.0.0.0/0 contains 169.254.169.254 but does not name it.
        for network in self.extra_networks:
            if (
                network.version == address.version
                and address in network
                and network.subnet_of(sensitive)  # type: ignore[arg-type]  # same version
            ):
                return None
        exact = ipaddress.ip_network(address)
        return (
            f"{address} is a link-local or cloud metadata address, refused unless listed "
            f"explicitly; an admin can list {exact} in {WHERE_TO_ALLOW}"
        )


LOCAL_ONLY = NetworkPolicy()


async def resolve_allowed(
    host: str, port: int, policy: NetworkPolicy, *, resolver: Resolver | None = None
) -> list[str]:
    """The addresses to connect to for `host`, every one of them judged; AddressRefused when
    any is refused (see the module's docstring for why any). Raises OSError (socket.gaierror)
    when the name does not resolve, as a connect by name would."""
    host = host.strip()
    literal = parse_ip(host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        addresses = await (resolver or policy.resolver)(host, port)
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} has no address")
    for address in addresses:
        if (reason := policy.refusal(address)) is not None:
            raise AddressRefused(reason if literal is not None else f"{host}: {reason}")
    # Connect to what was judged (::ffff:a.b.c.d as a.b.c.d); a zone (fe80::1%eth0) is kept,
    # since the address means nothing without it.
    return [address if "%" in address else str(parse_ip(address)) for address in addresses]


Connector = Callable[..., Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


async def open_connection(
    host: str,
    port: int,
    policy: NetworkPolicy,
    *,
    resolver: Resolver | None = None,
    connector: Connector = asyncio.open_connection,
    **kwargs: Any,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """asyncio.open_connection to the checked address itself, never to the name again.

    With `ssl=`, the certificate is still checked against `host` (server_hostname). The
    addresses are tried in the resolver's order; the last error is raised when none answers."""
    addresses = await resolve_allowed(host, port, policy, resolver=resolver)
    if kwargs.get("ssl") and "server_hostname" not in kwargs:
        kwargs["server_hostname"] = host.strip().strip("[]")
    error: OSError | None = None
    for address in addresses:
        try:
            return await connector(address, port, **kwargs)
        except OSError as failed:
            error = failed
    assert error is not None  # resolve_allowed returns at least one address
    raise error
