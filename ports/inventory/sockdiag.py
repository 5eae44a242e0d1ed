"""A minimal netlink sock_diag client: the listening TCP and unconnected UDP sockets of this host.

This is what `ss -tuln` asks the kernel, without the subprocess and text parsing. The kernel does
the filtering: a TCP dump whose state mask is LISTEN only walks the listening hash and never the
established table, so the cost does not grow with the number of connections.
"""

from __future__ import annotations

import os
import socket
import struct
from typing import NamedTuple

# <linux/netlink.h>, <linux/sock_diag.h>, <linux/inet_diag.h>
NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x01
NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH
NLM_F_DUMP_INTR = 0x10  # the tables changed during the dump: entries may be missing or doubled
NLMSG_ERROR = 2
NLMSG_DONE = 3

# <net/tcp_states.h>. Unconnected UDP sockets sit in TCP_CLOSE, connected ones in TCP_ESTABLISHED;
# `ss -l` asks for LISTEN|CLOSE, which for UDP means exactly the unconnected (bound) ones.
TCP_LISTEN = 10
TCP_CLOSE = 7

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
# inet_diag_req_v2: family, protocol, ext, pad, states, then inet_diag_sockid (48 bytes, all zero)
_REQUEST = struct.Struct("=BBBxI48x")
# inet_diag_msg: family, state, timer, retrans, sockid (sport, dport, src[16], dst[16], if,
# cookie[8]), expires, rqueue, wqueue, uid, inode. Only the fields we use are named below.
_MSG_FAMILY = struct.Struct("=B")
# sport as the raw (native-order) short, uid, inode: all a known socket needs to be recognised.
_MSG_KEY = struct.Struct("=4xH58xII")
_MSG_SPORT = struct.Struct("!H")  # network byte order
_MSG_IFINDEX = struct.Struct("=I")
_MSG_EXPIRES = struct.Struct("=I")
_MSG_LEN = 72
_OFF_SPORT, _OFF_SRC, _OFF_IF, _OFF_EXPIRES = 4, 8, 40, 52
# Attributes (struct rtattr: len, type, then the payload, 4-byte aligned) follow the message.
_RTATTR = struct.Struct("=HH")
# <linux/inet_diag.h> INET_DIAG_SKV6ONLY: a u8, IPV6_V6ONLY of the socket. The kernel sends it
# for every AF_INET6 socket without being asked (inet_diag_msg_attrs_fill; seen on 6.18 for TCP
# and UDP with idiag_ext = 0), so the dump request stays as it is.
INET_DIAG_SKV6ONLY = 11

# An interrupted dump is retried; the last attempt's result is taken as it is.
_ATTEMPTS = 3
# The kernel caps one dump message batch at 32 KiB; a larger buffer just avoids truncation.
_RECV_BUFFER = 64 * 1024

DUMPS = (
    ("tcp", socket.AF_INET, socket.IPPROTO_TCP, 1 << TCP_LISTEN),
    ("tcp", socket.AF_INET6, socket.IPPROTO_TCP, 1 << TCP_LISTEN),
    ("udp", socket.AF_INET, socket.IPPROTO_UDP, 1 << TCP_CLOSE),
    ("udp", socket.AF_INET6, socket.IPPROTO_UDP, 1 << TCP_CLOSE),
)


class SocketRow(NamedTuple):
    """One socket as the kernel reports it; owners are resolved elsewhere (from /proc)."""

    proto: str  # "tcp" | "udp"
    family: str  # "ipv4" | "ipv6"
    address: str
    port: int
    inode: int  # 0 for sockets the kernel itself holds (e.g. a WireGuard or NFS socket)
    uid: int
    # A [::] socket with IPV6_V6ONLY off: it also holds the IPv4 port (blocks 0.0.0.0 binds).
    # False for IPv4, v6-only and specific IPv6 addresses, and where the backend cannot tell.
    dual_stack: bool = False


class SockDiagError(OSError):
    """The kernel refused a dump (no sock_diag support, a seccomp filter, ...)."""


class _DumpInterrupted(Exception):
    pass


class _Batch(NamedTuple):
    """One recv() of a dump: its bytes, the rows decoded from them, and what it said of the dump."""

    data: bytes
    rows: list[SocketRow]
    done: bool  # the dump's last batch
    interrupted: bool  # the kernel's tables changed while the dump was read


class _KnownRow(NamedTuple):
    """A decoded socket, with its port as the kernel sent it: an inode number can be recycled."""

    raw_port: int
    row: SocketRow


class SockDiagClient:
    """Keeps one netlink socket open and reuses decoded rows of sockets already seen.

    Not thread-safe: the caller (Inventory) serialises snapshots.
    """

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        # kind of dump -> the reply batches of the previous dump
        self._batches: dict[int, list[_Batch]] = {}
        # inode -> its decoded row: a socket's address never changes, so only new inodes are
        # decoded.
        self._rows: dict[int, _KnownRow] = {}
        self._interface_names: dict[int, str] = {}
        # The list listening() returned last, handed out again while every reply batch was
        # byte-identical to the previous dump's: callers then tell "nothing changed" by identity.
        self._last_rows: list[SocketRow] | None = None
        self._fresh = False  # set by _dump when a batch had to be decoded (or was new)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __del__(self) -> None:
        self.close()  # a dropped Inventory should not leave its netlink socket to the GC

    def listening(self) -> list[SocketRow]:
        """Listening TCP and unconnected UDP sockets, IPv4 and IPv6, of this network namespace."""
        rows: list[SocketRow] = []
        # Any attempt that decoded something counts: a retried dump is compared with the
        # interrupted one, not with the rows returned last.
        self._fresh = False
        for attempt in range(_ATTEMPTS):
            rows = []
            try:
                for kind, (proto, family, protocol, states) in enumerate(DUMPS):
                    request = (kind, proto, family, protocol, states)
                    self._dump(request, rows, accept_interrupted=attempt == _ATTEMPTS - 1)
                break
            except _DumpInterrupted:
                continue  # the socket tables changed mid-dump; a new dump is consistent again
        last = self._last_rows
        if not self._fresh and last is not None and len(last) == len(rows):
            return last  # the same batches as last time, so the same rows in the same order
        self._last_rows = rows
        # Forget sockets that closed, so a recycled inode number is decoded afresh.
        if len(self._rows) > len(rows):
            alive = {row.inode for row in rows}
            for inode in self._rows.keys() - alive:
                del self._rows[inode]
        return rows

    def _socket(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
            sock.bind((0, 0))
            self._sock = sock
            self._last_rows = None
            self._batches.clear()  # replies carry the socket's port id: old batches never match
        return self._sock

    def _dump(
        self,
        request: tuple[int, str, int, int, int],
        rows: list[SocketRow],
        accept_interrupted: bool = False,
    ) -> None:
        kind, proto, family, protocol, states = request
        sock = self._socket()
        # A fixed sequence number per kind of dump keeps an unchanged reply byte-identical to the
        # previous one. Any dump left half-read closes the socket, so no stale reply can follow.
        seq = kind + 1
        header = _NLMSGHDR.pack(
            _NLMSGHDR.size + _REQUEST.size,
            SOCK_DIAG_BY_FAMILY,
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            0,
        )
        previous = self._batches.get(kind, [])
        batches: list[_Batch] = []
        interrupted = False
        try:
            sock.send(header + _REQUEST.pack(family, protocol, 0, states))
            while True:
                data = sock.recv(_RECV_BUFFER)
                index = len(batches)
                if index < len(previous) and previous[index].data == data:
                    # The kernel sent exactly what it sent last time: same sockets, same rows.
                    batch = previous[index]
                    rows.extend(batch.rows)
                else:
                    self._fresh = True
                    batch_rows: list[SocketRow] = []
                    done, batch_interrupted = self._parse(data, seq, proto, family, batch_rows)
                    rows.extend(batch_rows)
                    batch = _Batch(data, batch_rows, done, batch_interrupted)
                batches.append(batch)
                interrupted = interrupted or batch.interrupted
                if batch.done:
                    break
        except BaseException:
            # Whatever stopped us (an error, Ctrl-C), the rest of this dump is still queued.
            self.close()
            raise
        if len(batches) != len(previous):
            self._fresh = True
        self._batches[kind] = batches
        if interrupted and not accept_interrupted:
            raise _DumpInterrupted

    def _parse(
        self, data: bytes, seq: int, proto: str, family: int, rows: list[SocketRow]
    ) -> tuple[bool, bool]:
        """Decode one batch of replies into rows: (dump finished, dump interrupted)."""
        family_name = "ipv4" if family == socket.AF_INET else "ipv6"
        known = self._rows
        # Bound methods and locals: this loop runs once per socket whose batch changed.
        read_header = _NLMSGHDR.unpack_from
        read_message = _MSG_KEY.unpack_from
        append = rows.append
        interrupted = False
        size = len(data)
        offset = 0
        while offset + 16 <= size:
            length, msg_type, flags, msg_seq, _pid = read_header(data, offset)
            if length < 16:
                raise SockDiagError("malformed netlink message")
            body, end = offset + 16, min(offset + length, size)
            offset += (length + 3) & ~3
            if msg_seq != seq:
                continue  # not a reply to this request
            if flags & NLM_F_DUMP_INTR:
                interrupted = True
            if msg_type == SOCK_DIAG_BY_FAMILY and length >= 16 + _MSG_LEN:
                raw_port, uid, inode = read_message(data, body)
                known_row = known.get(inode)
                # The port check guards against an inode number recycled between two polls.
                if known_row is not None and known_row.raw_port == raw_port:
                    append(known_row.row)
                    continue
                row = self._decode(proto, family_name, data, body, end, uid, inode)
                if inode:  # 0: a kernel socket, never cached
                    known[inode] = _KnownRow(raw_port, row)
                append(row)
            elif msg_type == NLMSG_DONE:
                return True, interrupted
            elif msg_type == NLMSG_ERROR:
                (errno,) = struct.unpack_from("=i", data, body)
                if errno:
                    raise SockDiagError(-errno, os.strerror(-errno))
                return True, interrupted  # an acknowledgement ends the exchange too
        return False, interrupted

    def _decode(
        self, proto: str, family: str, buffer: bytes, body: int, end: int, uid: int, inode: int
    ) -> SocketRow:
        (port,) = _MSG_SPORT.unpack_from(buffer, body + _OFF_SPORT)
        if _MSG_FAMILY.unpack_from(buffer, body)[0] == socket.AF_INET:
            address = socket.inet_ntop(socket.AF_INET, buffer[body + _OFF_SRC : body + 12])
            return SocketRow(proto, family, address, port, inode, uid)
        raw = buffer[body + _OFF_SRC : body + _OFF_SRC + 16]
        address = socket.inet_ntop(socket.AF_INET6, raw)
        # A link-local address means nothing without its interface: keep the scope, as ss does.
        if raw[0] == 0xFE and raw[1] & 0xC0 == 0x80:
            (ifindex,) = _MSG_IFINDEX.unpack_from(buffer, body + _OFF_IF)
            if ifindex:
                address = f"{address}%{self._interface_name(ifindex)}"
        # Only the wildcard takes IPv4 too: [::1] with IPV6_V6ONLY off still holds no IPv4 port.
        dual_stack = address == "::" and _v6only(buffer, body + _MSG_LEN, end) == 0
        return SocketRow(proto, family, address, port, inode, uid, dual_stack)

    def _interface_name(self, ifindex: int) -> str:
        name = self._interface_names.get(ifindex)
        if name is None:
            try:
                name = socket.if_indextoname(ifindex)
            except OSError:
                name = str(ifindex)
            self._interface_names[ifindex] = name
        return name


def _v6only(buffer: bytes, start: int, end: int) -> int | None:
    """The INET_DIAG_SKV6ONLY attribute among a message's attributes; None when not sent."""
    offset = start
    while offset + _RTATTR.size <= end:
        length, kind = _RTATTR.unpack_from(buffer, offset)
        if length < _RTATTR.size:
            return None  # malformed: stop rather than loop
        if kind == INET_DIAG_SKV6ONLY and length > _RTATTR.size:
            return buffer[offset + _RTATTR.size]
        offset += (length + 3) & ~3
    return None


def available() -> bool:
    """Whether this kernel answers sock_diag dumps (Linux with inet_diag, not every sandbox)."""
    if not hasattr(socket, "AF_NETLINK"):
        return False
    client = SockDiagClient()
    try:
        client._dump((0, *DUMPS[0]), [], accept_interrupted=True)
    except (OSError, _DumpInterrupted):
        return False
    finally:
        client.close()
    return True


TCP_TIME_WAIT = 6


class TimeWaitSocket(NamedTuple):
    """A closed connection the kernel keeps in TIME_WAIT (60 s on Linux) on its local port."""

    family: str  # "ipv4" | "ipv6"
    address: str  # the local address
    port: int  # the local port: a server's own port when the server closed first
    expires_ms: int  # left before the kernel drops it


def time_wait_sockets() -> list[TimeWaitSocket]:
    """Every TCP connection in TIME_WAIT, IPv4 and IPv6: a one-off dump, not cached."""
    found: list[TimeWaitSocket] = []
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
    with sock:
        sock.bind((0, 0))
        for seq, family in ((1, socket.AF_INET), (2, socket.AF_INET6)):
            header = _NLMSGHDR.pack(
                _NLMSGHDR.size + _REQUEST.size,
                SOCK_DIAG_BY_FAMILY,
                NLM_F_REQUEST | NLM_F_DUMP,
                seq,
                0,
            )
            sock.send(header + _REQUEST.pack(family, socket.IPPROTO_TCP, 0, 1 << TCP_TIME_WAIT))
            while not _read_time_wait(sock.recv(_RECV_BUFFER), seq, found):
                pass
    return found


def _read_time_wait(data: bytes, seq: int, found: list[TimeWaitSocket]) -> bool:
    """Decode one batch of a TIME_WAIT dump into `found`: True when the dump is finished."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, msg_type, _flags, msg_seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size:
            raise SockDiagError("malformed netlink message")
        body = offset + _NLMSGHDR.size
        offset += (length + 3) & ~3
        if msg_seq != seq:
            continue
        if msg_type == NLMSG_DONE:
            return True
        if msg_type == NLMSG_ERROR:
            (errno,) = struct.unpack_from("=i", data, body)
            if errno:
                raise SockDiagError(-errno, os.strerror(-errno))
            return True
        if msg_type != SOCK_DIAG_BY_FAMILY or length < _NLMSGHDR.size + _MSG_LEN:
            continue
        (port,) = _MSG_SPORT.unpack_from(data, body + _OFF_SPORT)
        (expires,) = _MSG_EXPIRES.unpack_from(data, body + _OFF_EXPIRES)
        if _MSG_FAMILY.unpack_from(data, body)[0] == socket.AF_INET:
            family, raw = "ipv4", data[body + _OFF_SRC : body + _OFF_SRC + 4]
            address = socket.inet_ntop(socket.AF_INET, raw)
        else:
            family, raw = "ipv6", data[body + _OFF_SRC : body + _OFF_SRC + 16]
            address = socket.inet_ntop(socket.AF_INET6, raw)
        found.append(TimeWaitSocket(family, address, port, expires))
    return False
