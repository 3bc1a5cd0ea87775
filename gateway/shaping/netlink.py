"""Send many tc changes at once: rtnetlink messages packed with struct, acked in batches.

pyroute2 spends about 0.3 ms of Python per tc message building it (its generic
attribute encoder), which made the first pass for 1000 clients (8000 classes, leaves
and filters) take over 2 s. The few message shapes the shaper sends in bulk are packed
here directly, sent hundreds to a ``send()`` and acknowledged in order, which takes a
tenth of that (reading back is :mod:`gateway.shaping.dump`, on the same socket). The
one-off operations (the root and ingress qdiscs, the redirect action, the IFB) stay
with pyroute2 in :mod:`gateway.shaping.apply`.

Messages are processed by the kernel one by one, in order; a failed one does not stop
the ones after it. Deleting what is already gone counts as done (another pass, e.g.
``hotspotctl doctor --repair``, may have raced us to it). :meth:`TcBatch.commit`
returns after every ack and raises :class:`TcError` naming the first failure (the next
reconcile pass repairs the rest).
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from functools import cache

from gateway.nsenter import in_netns
from gateway.shaping.model import TcClass, TcFilter, TcLeaf

__all__ = ["TcBatch", "TcError"]

NETLINK_ROUTE = 0
SOL_NETLINK = 270  # not exported by Python's socket module
NETLINK_CAP_ACK = 10  # acks carry only the header of the request they answer
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
RTM_NEWQDISC, RTM_DELQDISC = 36, 37
RTM_NEWTCLASS, RTM_DELTCLASS = 40, 41
RTM_NEWTFILTER, RTM_DELTFILTER = 44, 45
TCA_KIND, TCA_OPTIONS = 1, 2
TCA_HTB_PARMS, TCA_HTB_RATE64, TCA_HTB_CEIL64 = 1, 6, 7
TCA_U32_CLASSID, TCA_U32_HASH, TCA_U32_LINK, TCA_U32_DIVISOR, TCA_U32_SEL = 1, 2, 3, 4, 5
TC_U32_TERMINAL = 1
TC_LINKLAYER_ETHERNET = 1
CHUNK = 256  # messages per send: their acks must fit the socket's receive buffer

FLAGS = {
    "add": NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
    "change": NLM_F_REQUEST | NLM_F_ACK | NLM_F_REPLACE,
    "replace": NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,  # add, or change if there
    "del": NLM_F_REQUEST | NLM_F_ACK,
}


class TcError(Exception):
    """A tc operation failed: ``op`` says which, ``detail`` what the kernel answered."""

    def __init__(self, op: str, detail: str):
        self.op = op
        self.detail = detail
        super().__init__(f"{op}: {detail}")


def _attr(kind: int, payload: bytes) -> bytes:
    head = struct.pack("=HH", 4 + len(payload), kind)
    return head + payload + b"\0" * (-len(payload) % 4)


@cache
def _tick_in_usec() -> float:
    # what tc does: /proc/net/psched says how the kernel's scheduler ticks relate to microseconds
    try:
        with open("/proc/net/psched") as f:
            t2us, us2t, clock_res, _hz = (int(x, 16) for x in f.read().split()[:4])
        return t2us / us2t * clock_res / 1_000_000
    except (OSError, ValueError):
        return 1.0


def _ticks(rate_bytes: int, size: int) -> int:
    """Return the time to send ``size`` bytes at ``rate_bytes``/s, in scheduler ticks (HTB's buffer)."""
    return min(0xFFFFFFFF, int(int(1_000_000 * size / max(rate_bytes, 1)) * _tick_in_usec()))


def _ratespec(rate_bytes: int) -> bytes:
    # struct tc_ratespec: cell_log, linklayer, overhead, cell_align, mpu, rate
    return struct.pack("=BBHhHI", 0, TC_LINKLAYER_ETHERNET, 0, 0, 0, min(rate_bytes, 0xFFFFFFFF))


def _htb_options(c: TcClass) -> bytes:
    rate, ceil = c.rate // 8, c.ceil // 8
    burst = c.burst or rate // 1000 + 1600
    cburst = c.cburst or ceil // 1000 + 1600
    parms = _ratespec(rate) + _ratespec(ceil)
    parms += struct.pack("=IIIII", _ticks(rate, burst), _ticks(ceil, cburst), c.quantum, 0, c.prio)
    out = _attr(TCA_HTB_PARMS, parms)
    if rate > 0xFFFFFFFF:
        out += _attr(TCA_HTB_RATE64, struct.pack("=Q", rate))
    if ceil > 0xFFFFFFFF:
        out += _attr(TCA_HTB_CEIL64, struct.pack("=Q", ceil))
    return out


def _u32_options(f: TcFilter) -> bytes:
    if f.divisor:
        return _attr(TCA_U32_DIVISOR, struct.pack("=I", f.divisor))
    out = b""
    if f.target:
        out += _attr(TCA_U32_CLASSID, struct.pack("=I", f.target))
    if f.ht:
        out += _attr(TCA_U32_HASH, struct.pack("=I", f.ht))
    if f.link:
        out += _attr(TCA_U32_LINK, struct.pack("=I", f.link))
    hmask, hoff = f.hashkey or (0, 0)
    # struct tc_u32_sel: flags, offshift, nkeys, pad, offmask, off, offoff, hoff, hmask; then the keys
    # a node that links to a hash table is not terminal: when no node of the table matches,
    # u32 goes on with the next node after the link (the upload side's 1:e node, plan.py)
    flags = TC_U32_TERMINAL if f.target else 0
    sel = struct.pack("=BBBxHHhh", flags, 0, len(f.keys), 0, 0, 0, hoff) + struct.pack(">I", hmask)
    for key in f.keys:
        sel += struct.pack(">II", key.mask, key.value & key.mask) + struct.pack("=ii", key.offset, 0)
    return out + _attr(TCA_U32_SEL, sel)


class TcBatch:
    """Collects tc messages for one namespace and sends them with :meth:`commit`."""

    def __init__(self, netns: str = ""):
        self.netns = netns
        self._sock: socket.socket | None = None
        self._messages: list[tuple[bytes, str]] = []  # (message without its header, what it does)
        self._seq = 0

    def socket(self) -> socket.socket:
        """Return the netlink socket, bound to the router's namespace (opened on first use)."""
        if self._sock is None:
            with in_netns(self.netns):  # the socket stays bound to the router's namespace
                sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
            try:
                sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
                sock.bind((0, 0))
            except OSError:
                sock.close()
                raise
            self._sock = sock
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __len__(self) -> int:
        return len(self._messages)

    def _add(self, kind: int, flags: int, index: int, handle: int, parent: int, info: int, attrs: bytes,
             what: str) -> None:  # fmt: skip
        # struct tcmsg: family, pad, ifindex, handle, parent, info
        body = struct.pack("=BxxxiIII", socket.AF_UNSPEC, index, handle, parent, info) + attrs
        self._messages.append((struct.pack("=HH", kind, flags) + body, what))

    def klass(self, op: str, index: int, c: TcClass) -> None:
        """Queue adding (``op`` "add"), changing ("change"), either ("replace") or deleting ("del") ``c``."""
        if op == "del":
            self._add(RTM_DELTCLASS, FLAGS["del"], index, c.handle, 0, 0, b"", f"delete class {c.handle:#x}")
            return
        attrs = _attr(TCA_KIND, b"htb\0") + _attr(TCA_OPTIONS, _htb_options(c))
        self._add(RTM_NEWTCLASS, FLAGS[op], index, c.handle, c.parent, 0, attrs, f"{op} class {c.handle:#x}")

    def leaf(self, op: str, index: int, leaf: TcLeaf) -> None:
        """Queue adding, changing or deleting a leaf qdisc (pfifo or fq_codel)."""
        what = f"{op} leaf {leaf.handle:#x}"
        if op == "del":
            self._add(RTM_DELQDISC, FLAGS["del"], index, leaf.handle, leaf.parent, 0, b"", what)
            return
        options = _attr(TCA_OPTIONS, struct.pack("=I", leaf.limit)) if leaf.kind == "pfifo" else b""
        attrs = _attr(TCA_KIND, leaf.kind.encode() + b"\0") + options
        self._add(RTM_NEWQDISC, FLAGS[op], index, leaf.handle, leaf.parent, 0, attrs, what)

    def filter(self, op: str, index: int, parent: int, f: TcFilter, handle: int | None = None) -> None:
        """Queue adding, replacing or deleting a u32 node (``handle``: the kernel's, for root-table nodes)."""
        info = (f.prio << 16) | socket.htons(f.protocol)
        attrs = _attr(TCA_KIND, b"u32\0")
        handle = f.handle if handle is None else handle
        if op == "del":
            self._add(RTM_DELTFILTER, FLAGS["del"], index, handle, parent, info, attrs,
                      f"delete filter {handle:#x}")  # fmt: skip
            return
        attrs += _attr(TCA_OPTIONS, _u32_options(f))
        self._add(RTM_NEWTFILTER, FLAGS[op], index, handle, parent, info, attrs, f"{op} filter {handle:#x}")

    def commit(self) -> int:
        """Send every queued message, wait for each ack; return how many were sent."""
        messages, self._messages = self._messages, []
        if not messages:
            return 0
        sock = self.socket()
        failure: TcError | None = None
        for start in range(0, len(messages), CHUNK):
            chunk = messages[start : start + CHUNK]
            pending: dict[int, str] = {}
            data = bytearray()
            for body, what in chunk:
                self._seq = (self._seq + 1) & 0x7FFFFFFF or 1  # dumps use the upper half
                pending[self._seq] = what
                data += (
                    struct.pack("=I", 12 + len(body)) + body[:4] + struct.pack("=II", self._seq, 0) + body[4:]
                )
            sock.send(data)
            while pending:
                reply = sock.recv(1 << 16)
                at = 0
                while at + 16 <= len(reply):
                    length, kind, _flags, seq, _pid = struct.unpack_from("=IHHII", reply, at)
                    if kind == NLMSG_ERROR and seq in pending:
                        (error,) = struct.unpack_from("=i", reply, at + 16)
                        what = pending.pop(seq)
                        gone = error == -errno.ENOENT and what.startswith("delete")  # done already
                        if error and not gone and failure is None:
                            failure = TcError(what, os.strerror(-error))
                    at += (length + 3) & ~3
        if failure is not None:
            raise failure
        return len(messages)
