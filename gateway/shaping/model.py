"""The tc tree as data: records, handles and their text, shared by planner, diff and applier.

Handles follow tc: ``"1:11"`` is ``0x10011`` (major 1, minor 0x11). u32 filter handles
are ``htid:bucket:node`` packed as 12:8:12 bits. See :mod:`gateway.shaping.plan` for what
the tree looks like and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "CLIENT_MINOR_BASE",
    "ETH_P_ALL",
    "ETH_P_ARP",
    "ETH_P_IP",
    "ETH_P_IPV6",
    "HASH_DIVISOR",
    "HASH_TABLE",
    "HASH_TABLE6",
    "FREE_CLASS",
    "LOCAL_CLASS",
    "WEB_UNAUTH_CLASS",
    "MAX_SLOT",
    "PRIO_ARP",
    "PRIO_IP",
    "PRIO_IPV6",
    "ROOT_QDISC",
    "UNAUTH_CLASS",
    "UPLINK_CLASS",
    "TcChange",
    "TcClass",
    "TcFilter",
    "TcLeaf",
    "TcPlan",
    "TcTree",
    "U32Key",
    "client_class",
    "describe",
    "handle_text",
    "slot_of_class",
]

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD

# Handles: "1:2" is 0x10002. Clients use minors 0x11.. (slot + 0x10) and their leaf
# qdisc takes the same number as its major, so `tc -s class show` reads across.
ROOT_QDISC = 0x10000
UPLINK_CLASS = 0x10001
UNAUTH_CLASS = 0x10002
LOCAL_CLASS = 0x10003
WEB_UNAUTH_CLASS = 0x1000E  # upload: not-logged-in phones' web requests (mostly to the portal)
FREE_CLASS = 0x1000F  # all free sessions together (issue 16): a cap no MAC rotation multiplies
CLIENT_MINOR_BASE = 0x10
# u32 node ids are 12 bits, and a client's node id is its slot: 4095 clients per router.
MAX_SLOT = 0xFFF
HASH_TABLE = 0x2  # the u32 hash table (htid) of IPv4 nodes, one per client
HASH_TABLE6 = 0x3  # ... of IPv6 nodes, one per client, matching its MAC
HASH_DIVISOR = 256  # bucket = last octet of the client's IPv4 address / of its MAC
PRIO_ARP = 1
PRIO_IP = 2
PRIO_IPV6 = 3


@dataclass(frozen=True, order=True)
class TcClass:
    """One HTB class. Rates in bits/s (whole bytes); quantum, burst and cburst in bytes.

    The bursts follow from the rates and are not compared (the kernel stores them as
    times, which do not round-trip exactly): a class whose rates are right is right.
    """

    handle: int
    parent: int
    rate: int
    ceil: int
    quantum: int
    prio: int = 0
    burst: int = field(default=0, compare=False)
    cburst: int = field(default=0, compare=False)


@dataclass(frozen=True, order=True)
class TcLeaf:
    """The qdisc under a class: ``kind`` "pfifo" (``limit`` packets) or "fq_codel"."""

    parent: int
    handle: int
    kind: str
    limit: int = 0


@dataclass(frozen=True, order=True)
class U32Key:
    """One u32 match: ``(word at offset) & mask == value`` (offset from the IP header)."""

    value: int
    mask: int
    offset: int


@dataclass(frozen=True, order=True)
class TcFilter:
    """One u32 filter node, or a hash table when ``divisor`` is set.

    ``ht`` is the table and bucket the node lives in; 0 means the prio's own root
    table, whose id the kernel picks, so those nodes carry only their node id in
    ``handle``. Nodes in our hash table carry their full handle.
    """

    prio: int
    protocol: int
    handle: int
    ht: int = 0
    target: int = 0
    keys: tuple[U32Key, ...] = ()
    link: int = 0
    hashkey: tuple[int, int] | None = None  # (mask, offset) of the word hashed into buckets
    divisor: int = 0


@dataclass(frozen=True)
class TcTree:
    """Everything on one device: an HTB root qdisc, its classes, leaves and filters."""

    device: str
    default: int
    classes: tuple[TcClass, ...]
    leaves: tuple[TcLeaf, ...]
    filters: tuple[TcFilter, ...]

    def class_map(self) -> dict[int, TcClass]:
        return {c.handle: c for c in self.classes}


@dataclass(frozen=True)
class TcChange:
    """One tc object to send on ``device`` outside a diff (the share book's fast paths):
    ``op`` is "replace" (add, or change if there) or "del"."""

    op: str
    device: str
    item: TcClass | TcLeaf | TcFilter


@dataclass(frozen=True)
class TcPlan:
    """Both directions: ``down`` on the LAN interface, ``up`` on its IFB."""

    down: TcTree
    up: TcTree


def client_class(slot: int) -> int:
    """Return the class handle of the client in ``slot`` (1 .. MAX_SLOT)."""
    if not 1 <= slot <= MAX_SLOT:
        raise ValueError(f"slot {slot} is out of range 1..{MAX_SLOT}")
    return ROOT_QDISC | (CLIENT_MINOR_BASE + slot)


def slot_of_class(handle: int) -> int | None:
    """Return the slot a client class handle belongs to, or None for other classes."""
    minor = handle & 0xFFFF
    if handle >> 16 != 1 or not CLIENT_MINOR_BASE < minor <= CLIENT_MINOR_BASE + MAX_SLOT:
        return None
    return minor - CLIENT_MINOR_BASE


# ---------------------------------------------------------------------------------------
# Text, for people (``hotspotctl doctor``, golden files in tests)


def handle_text(handle: int) -> str:
    """Return a class or qdisc handle the way tc prints it (``0x10011`` -> ``"1:11"``)."""
    return f"{handle >> 16:x}:{handle & 0xFFFF:x}" if handle & 0xFFFF else f"{handle >> 16:x}:"


def _u32_text(handle: int) -> str:
    return f"{handle >> 20:x}:{(handle >> 12) & 0xFF:x}:{handle & 0xFFF:x}"


def describe(tree: TcTree) -> list[str]:
    """Return one line per class, leaf and filter of ``tree``, in a stable order."""
    lines = [f"qdisc htb {handle_text(ROOT_QDISC)} dev {tree.device} default {handle_text(tree.default)}"]
    for c in tree.classes:
        lines.append(
            f"class {handle_text(c.handle)} parent {handle_text(c.parent)} rate {c.rate} "
            f"ceil {c.ceil} quantum {c.quantum} prio {c.prio} burst {c.burst} cburst {c.cburst}"
        )
    for leaf in tree.leaves:
        limit = f" limit {leaf.limit}" if leaf.kind == "pfifo" else ""
        lines.append(f"leaf {leaf.kind} {handle_text(leaf.handle)} parent {handle_text(leaf.parent)}{limit}")
    for f in tree.filters:
        head = f"filter prio {f.prio} protocol {f.protocol:#06x}"
        if f.divisor:
            lines.append(f"{head} table {f.handle >> 20:x}: divisor {f.divisor}")
            continue
        where = f"ht {_u32_text(f.ht)}" if f.ht else "root"
        text = f"{head} {where} handle {_u32_text(f.handle)}"
        for k in f.keys:
            text += f" match {k.value:08x}/{k.mask:08x}@{k.offset}"
        if f.link:
            text += f" link {_u32_text(f.link)} hash {f.hashkey[0]:#x}@{f.hashkey[1]}" if f.hashkey else ""
        if f.target:
            text += f" classid {handle_text(f.target)}"
        lines.append(text)
    return lines
