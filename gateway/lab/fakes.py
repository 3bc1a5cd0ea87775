"""Made-up devices inside one lab phone: macvlan interfaces with their own MAC and address.

A phone that randomizes its MAC, or a class of 40 phones, without 40 namespaces: each
fake device is a macvlan on the phone's ``eth0`` with its own MAC, a /32 address on the
LAN and a routing table chosen by source address, so a socket bound to that address
(``curl --interface``, ``iperf3 -B``, ``source_address=``) leaves with that MAC. ARP
answers come from the interface that owns the address (``arp_ignore=1``).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.lab.lab import Lab
from gateway.lab.topology import LAN_ROUTER

__all__ = ["Fake", "add_fakes", "remove_fakes"]


@dataclass(frozen=True)
class Fake:
    """One made-up device: its interface, MAC and IPv4 address."""

    name: str
    mac: str
    ip: str


def _fakes(prefix: str, count: int, first_ip: int, mac_byte: int) -> list[Fake]:
    if not 1 <= count <= 50 or not 2 <= first_ip <= 254 - count:
        raise ValueError("1-50 fakes, on LAN addresses .2-.254")
    return [
        Fake(f"{prefix}{i}", f"02:00:00:00:{mac_byte:02x}:{i:02x}", f"10.42.0.{first_ip + i}")
        for i in range(count)
    ]


def add_fakes(
    lab: Lab, ns: str, count: int, *, first_ip: int, prefix: str = "fk", mac_byte: int = 0xF7
) -> list[Fake]:
    """Add ``count`` fake devices to phone namespace ``ns``; return them."""
    fakes = _fakes(prefix, count, first_ip, mac_byte)
    lines = [
        "set -e",
        "sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2",
        "sysctl -qw net.ipv4.conf.all.rp_filter=0",
    ]
    for table, fake in enumerate(fakes, start=100):
        lines += [
            f"ip link add link eth0 name {fake.name} address {fake.mac} type macvlan mode bridge",
            f"sysctl -qw net.ipv4.conf.{fake.name}.rp_filter=0",
            f"ip addr add {fake.ip}/32 dev {fake.name}",
            f"ip link set {fake.name} up",
            f"ip rule add from {fake.ip} table {table}",
            f"ip route add {LAN_ROUTER} dev {fake.name} table {table}",
            f"ip route add default via {LAN_ROUTER} dev {fake.name} table {table}",
        ]
    lab.exec(ns, "sh", "-c", "\n".join(lines), check=True, timeout=60)
    return fakes


def remove_fakes(lab: Lab, ns: str, fakes: list[Fake]) -> None:
    """Remove what :func:`add_fakes` added (errors ignored: a half-built set goes too)."""
    lines = [
        f"ip rule del from {f.ip} table {t}; ip link del {f.name}" for t, f in enumerate(fakes, start=100)
    ]
    lines.append("sysctl -qw net.ipv4.conf.all.arp_ignore=0 net.ipv4.conf.all.arp_announce=0; true")
    lab.exec(ns, "sh", "-c", "\n".join(lines), timeout=60)
