"""The lab's shape as data: namespaces, veth pairs, bridge ports, addresses, routes.

Pure: :func:`plan_lab` turns a :class:`LabSpec` into a :class:`LabPlan`; the
applier in :mod:`gateway.lab.netns` makes the kernel match it. Every link is
created with both ends inside lab namespaces, so nothing ever touches the root
namespace::

    hs-c1 eth0 --\\
    hs-c2 eth0 ---+-- hs-ap br0 (the Wi-Fi access point) -- gw | lan0 hs-gw wan0 -- eth0 hs-up
    hs-cN eth0 --/                                         10.42.0.1/24   192.0.2.2/24   192.0.2.1/24
                                                                                            |
    with ``hq=True``, the program's headquarters sits behind the "internet":   hq0 198.51.100.1/24
                                                                               eth0 198.51.100.10/24 hs-hq
    (FreeRADIUS + PostgreSQL); the router reaches it through its default route, the
    phones never do (the router forwards only logged-in phones, and never to HQ).

    A second library joins that HQ with ``hq_of="<the HQ lab's prefix>"`` and a ``site``
    number n (1..50): its "internet" gets a link of its own to the HQ namespace,
    198.51.(100+n).1 <-> 198.51.(100+n).10, masquerades the library towards HQ (HQ knows it
    as 198.51.(100+n).1) and forwards HQ's Disconnect/CoA on that address to its router.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from importlib import resources

__all__ = [
    "LAN_ROUTER",
    "lab_config_text",
    "UPSTREAM_IP",
    "UPSTREAM_IP6",
    "UPSTREAM_WALLED_IP",
    "HQ_IP",
    "HQ_NET",
    "WAN_ROUTER",
    "IPERF_PORTS",
    "Address",
    "LabPlan",
    "LabSpec",
    "Veth",
    "client_ip6",
    "client_mac",
    "plan_lab",
    "site_link",
]

LAN_ROUTER = "10.42.0.1"
LAN_PREFIX = 24
WAN_ROUTER = "192.0.2.2"
UPSTREAM_IP = "192.0.2.1"
# walled-garden names resolve here in the lab, so they are told apart from "everything else"
UPSTREAM_WALLED_IP = "192.0.2.7"
# IPv6 exists in the lab so tests can prove it does not escape: the router forwards
# v6 and has a route upstream, clients configure static addresses when a test needs them.
# the program's headquarters (RADIUS + database), one hop beyond the lab's internet
HQ_NET = "198.51.100.0/24"
HQ_GATEWAY = "198.51.100.1"
HQ_IP = "198.51.100.10"
LAN_ROUTER6 = "2001:db8:42::1"
WAN_ROUTER6 = "2001:db8:2::2"
UPSTREAM_IP6 = "2001:db8:2::1"
IPERF_PORTS = tuple(range(5201, 5213))
MAX_CLIENTS = 60
# the lab's desk PC (its last phone) always gets this address: desk.networks names it
DESK_PC_IP = "10.42.0.10"
# names under this domain are answered by the lab's DNS-tunnel endpoint (gateway/lab/dnstunnel.py)
TUNNEL_DOMAIN = "tunnel.test"
TUNNEL_PORT = 5300

_PREFIX = re.compile(r"^hs-([a-z0-9]{1,4}-)?$")


@dataclass(frozen=True)
class LabSpec:
    """What to build: a namespace prefix (``hs-`` or ``hs-xyz-``) and how many phones.

    ``uplink`` is the line rate the lab's config gives the router both ways; benchmarks
    that measure forwarding rather than shaping raise it so the shaper is not the limit.
    """

    prefix: str = "hs-"
    clients: int = 2
    uplink: str = "10mbit"
    hq: bool = False
    hq_of: str = ""  # the prefix of the lab whose HQ this library joins ("" = none)
    site: int = 0  # this library's link number at that HQ (1..50)

    def __post_init__(self) -> None:
        if not _PREFIX.match(self.prefix):
            raise ValueError(f'lab prefix "{self.prefix}" must look like "hs-" or "hs-t-"')
        if not 1 <= self.clients <= MAX_CLIENTS:
            raise ValueError(f"clients must be 1 to {MAX_CLIENTS}, got {self.clients}")
        if self.hq_of:
            if not _PREFIX.match(self.hq_of) or self.hq_of == self.prefix or self.hq:
                raise ValueError(f'hq_of "{self.hq_of}" must be another lab\'s prefix, and no HQ of its own')
            if not 1 <= self.site <= 50:
                raise ValueError(f"site must be 1 to 50 for a library joining an HQ, got {self.site}")

    @property
    def gw(self) -> str:
        return f"{self.prefix}gw"

    @property
    def up(self) -> str:
        return f"{self.prefix}up"

    @property
    def ap(self) -> str:
        return f"{self.prefix}ap"

    @property
    def hq_ns(self) -> str:
        """The namespace of the program's headquarters (exists only with ``hq=True``)."""
        return f"{self.prefix}hq"

    def client(self, index: int) -> str:
        """Return the namespace of phone number ``index`` (1-based)."""
        return f"{self.prefix}c{index}"

    @property
    def client_namespaces(self) -> list[str]:
        return [self.client(i) for i in range(1, self.clients + 1)]

    @property
    def namespaces(self) -> list[str]:
        return [self.gw, self.up, self.ap, *self.client_namespaces, *([self.hq_ns] if self.hq else [])]


@dataclass(frozen=True)
class Veth:
    """A veth pair with each end created directly in its namespace."""

    ns_a: str
    name_a: str
    ns_b: str
    name_b: str
    mac_b: str = ""  # fixed MAC for end b (phones get predictable MACs)


@dataclass(frozen=True)
class Address:
    ns: str
    ifname: str
    cidr: str


@dataclass(frozen=True)
class LabPlan:
    spec: LabSpec
    namespaces: tuple[str, ...]
    veths: tuple[Veth, ...]
    bridge: tuple[str, str, tuple[str, ...]]  # (ns, bridge name, port names)
    addresses: tuple[Address, ...]
    routes: tuple[tuple[str, str, str], ...]  # (ns, destination, gateway)
    sysctls: tuple[tuple[str, str, str], ...]  # (ns, key, value)
    # (ns, ifname) that hand out Ethernet-sized frames only: a phone's Wi-Fi and a server
    # across the internet never deliver the 64 KB TSO super-frames a veth passes on as is,
    # and a queue counted in packets (the shaper's) would hold far more than it should
    frame_sized: tuple[tuple[str, str], ...] = ()


def site_link(site: int) -> tuple[str, str]:
    """Return (the library's internet side, HQ's side) of site ``site``'s link to HQ (0: the HQ lab's own)."""
    if site == 0:
        return HQ_GATEWAY, HQ_IP
    return f"198.51.{100 + site}.1", f"198.51.{100 + site}.10"


def client_mac(index: int) -> str:
    """Return the fixed MAC of phone ``index`` (locally administered, unicast)."""
    return f"02:00:00:00:01:{index:02x}"


def lab_config_text(lab_dir: object, prefix: str = "hs-", clients: int = 2) -> str:
    """Return the lab's hotspot.toml (``gateway/lab/hotspot.toml.in`` filled in) for a lab of
    ``clients`` phones in ``lab_dir``; the last phone is the desk PC, with its fixed address."""
    template = resources.files("gateway.lab").joinpath("hotspot.toml.in").read_text()
    return string.Template(template).substitute(
        lab_dir=lab_dir, prefix=prefix, desk_pc=DESK_PC_IP, desk_pc_mac=client_mac(clients)
    )


def client_ip6(index: int) -> str:
    """Return the static IPv6 address a test may give phone ``index``."""
    return f"2001:db8:42::{index + 0x100:x}"


def plan_lab(spec: LabSpec) -> LabPlan:
    """Return the namespaces, links, addresses and routes of the lab described by ``spec``."""
    veths = [
        Veth(spec.gw, "wan0", spec.up, "eth0"),
        Veth(spec.gw, "lan0", spec.ap, "gw"),
    ]
    ports = ["gw"]
    for i in range(1, spec.clients + 1):
        veths.append(Veth(spec.ap, f"c{i}", spec.client(i), "eth0", mac_b=client_mac(i)))
        ports.append(f"c{i}")
    addresses = (
        Address(spec.gw, "lan0", f"{LAN_ROUTER}/{LAN_PREFIX}"),
        Address(spec.gw, "wan0", f"{WAN_ROUTER}/24"),
        Address(spec.up, "eth0", f"{UPSTREAM_IP}/24"),
        Address(spec.up, "eth0", f"{UPSTREAM_WALLED_IP}/24"),
        Address(spec.gw, "lan0", f"{LAN_ROUTER6}/64"),
        Address(spec.gw, "wan0", f"{WAN_ROUTER6}/64"),
        Address(spec.up, "eth0", f"{UPSTREAM_IP6}/64"),
    )
    routes = (
        (spec.gw, "default", UPSTREAM_IP),
        (spec.gw, "default6", UPSTREAM_IP6),
        # the upstream routes the lab's v6 LAN back (v4 is masqueraded, v6 is not)
        (spec.up, "2001:db8:42::/64", WAN_ROUTER6),
    )
    hq_sysctls: tuple[tuple[str, str, str], ...] = ()
    if spec.hq:
        veths.append(Veth(spec.up, "hq0", spec.hq_ns, "eth0"))
        addresses += (
            Address(spec.up, "hq0", f"{HQ_GATEWAY}/24"),
            Address(spec.hq_ns, "eth0", f"{HQ_IP}/24"),
        )
        # HQ answers the router's (masqueraded) WAN address only; no route to any LAN
        routes += ((spec.hq_ns, "default", HQ_GATEWAY),)
        hq_sysctls = (
            (spec.up, "net.ipv4.ip_forward", "1"),
            (spec.hq_ns, "net.ipv6.conf.all.disable_ipv6", "1"),
        )
    if spec.hq_of:
        near, far = site_link(spec.site)
        hq_ns = f"{spec.hq_of}hq"  # the other lab's: this plan links to it, never creates it
        veths.append(Veth(spec.up, "hq0", hq_ns, f"site{spec.site}"))
        addresses += (
            Address(spec.up, "hq0", f"{near}/24"),
            Address(hq_ns, f"site{spec.site}", f"{far}/24"),
        )
        routes += ((spec.up, HQ_IP, far),)
        hq_sysctls = ((spec.up, "net.ipv4.ip_forward", "1"),)
    sysctls = (
        (spec.gw, "net.ipv4.ip_forward", "1"),
        (spec.gw, "net.ipv6.conf.all.forwarding", "1"),
        # phones must not autoconfigure v6 from anything: there is no RA in the lab
        *((ns, "net.ipv6.conf.eth0.accept_ra", "0") for ns in spec.client_namespaces),
        # the bridge must not run IPv6 of its own
        (spec.ap, "net.ipv6.conf.all.disable_ipv6", "1"),
        *hq_sysctls,
    )
    return LabPlan(
        spec=spec,
        namespaces=tuple(spec.namespaces),
        veths=tuple(veths),
        bridge=(spec.ap, "br0", tuple(ports)),
        addresses=addresses,
        routes=routes,
        sysctls=sysctls,
        frame_sized=((spec.up, "eth0"), *((ns, "eth0") for ns in spec.client_namespaces)),
    )
