"""Ask the LAN, from the router, whether an address answers as a given MAC (ARP and NDP).

The kernel's neighbour table believes payloads ("X is at M" in an ARP or NA body), so it
cannot tell a device's own answer from a forged one sent by another device. These probes
open raw packet sockets on the LAN interface, send a broadcast ARP request or a
multicast neighbour solicitation, and accept only replies whose **Ethernet source**, payload
sender and (for NA) solicited flag and target link-layer option all name the expected MAC.
A visitor planting entries from its own MAC therefore never passes; one that forges the
victim's MAC as its Ethernet source is a MAC clone (see ``docs/security.md``).

Needs ``CAP_NET_RAW`` (the gateway has it). Every probe is bounded in time and count.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import struct
import time
from collections.abc import Iterable

from gateway.nsenter import in_netns

__all__ = ["Prober", "arp_request", "neighbour_solicitation", "parse_arp_reply", "parse_na"]

ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
PACKET_OUTGOING = 4
MAX_FRAMES = 4096  # frames read per probe at most, whatever the LAN sends meanwhile


def _mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def _mac_text(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def arp_request(router_mac: str, router_ip: str, target: str) -> bytes:
    """Return a broadcast Ethernet frame asking "who has ``target``? tell ``router_ip``"."""
    eth = b"\xff" * 6 + _mac_bytes(router_mac) + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)
    arp += _mac_bytes(router_mac) + socket.inet_aton(router_ip) + b"\0" * 6 + socket.inet_aton(target)
    return eth + arp


def parse_arp_reply(frame: bytes) -> tuple[str, str] | None:
    """Return ``(sender ip, mac)`` of an ARP reply whose Ethernet source is its sender, else None."""
    if len(frame) < 42 or frame[12:14] != struct.pack("!H", ETH_P_ARP):
        return None
    htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", frame[14:22])
    if (htype, ptype, hlen, plen, op) != (1, 0x0800, 6, 4, 2):
        return None
    sender_mac, sender_ip = frame[22:28], frame[28:32]
    if sender_mac != frame[6:12]:
        return None  # "X is at M" sent by someone else: a planted entry, not M's own answer
    return socket.inet_ntoa(sender_ip), _mac_text(sender_mac)


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def neighbour_solicitation(router_mac: str, router_ip6: str, target: str) -> bytes:
    """Return a frame soliciting ``target`` at its solicited-node multicast address."""
    tgt = ipaddress.IPv6Address(target).packed
    dst = ipaddress.IPv6Address("ff02::1:ff00:0").packed[:13] + tgt[13:]
    src = ipaddress.IPv6Address(router_ip6).packed
    body = struct.pack("!BBHI", 135, 0, 0, 0) + tgt + struct.pack("!BB", 1, 1) + _mac_bytes(router_mac)
    pseudo = src + dst + struct.pack("!I3xB", len(body), 58)
    body = body[:2] + struct.pack("!H", _checksum(pseudo + body)) + body[4:]
    ip6 = struct.pack("!IHBB", 6 << 28, len(body), 58, 255) + src + dst
    eth = b"\x33\x33" + dst[12:] + _mac_bytes(router_mac) + struct.pack("!H", ETH_P_IPV6)
    return eth + ip6 + body


def parse_na(frame: bytes) -> tuple[str, str] | None:
    """Return ``(target, mac)`` of a solicited NA sent by the MAC it advertises, else None."""
    if len(frame) < 14 + 40 + 24 or frame[12:14] != struct.pack("!H", ETH_P_IPV6):
        return None
    ip6 = frame[14:54]
    if ip6[6] != 58 or ip6[7] != 255:  # ICMPv6, and from the link itself (RFC 4861 hop limit)
        return None
    icmp = frame[54:]
    if icmp[0] != 136 or icmp[1] != 0 or not icmp[4] & 0x40:  # NA with the Solicited flag
        return None
    target, source = icmp[8:24], frame[6:12]
    options = icmp[24:]
    while len(options) >= 8:
        kind, units = options[0], options[1]
        if units == 0:
            return None
        if kind == 2 and options[2:8] != source:
            return None  # advertises another MAC than the one that sent it
        options = options[units * 8 :]
    return str(ipaddress.IPv6Address(target)), _mac_text(source)


class Prober:
    """Sends ARP/NS probes on ``ifname`` in ``netns`` and collects the genuine answers."""

    def __init__(self, netns: str, ifname: str, router_ip: str, router_ip6: str | None = None):
        self.netns, self.ifname = netns, ifname
        self.router_ip, self.router_ip6 = router_ip, router_ip6

    def _open(self, proto: int) -> socket.socket:
        with in_netns(self.netns):
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto))
        sock.bind((self.ifname, proto))
        sock.setblocking(False)
        return sock

    def answered(
        self,
        arp: Iterable[tuple[str, str]] = (),
        ns: Iterable[tuple[str, str]] = (),
        *,
        timeout: float = 0.4,
        tries: int = 2,
    ) -> set[tuple[str, str]]:
        """Return the ``(ip, mac)`` pairs (of ``arp`` and ``ns``) that answered from that MAC."""
        arp = list(arp)
        ns = list(ns) if self.router_ip6 else []  # no IPv6 on the LAN: nothing to ask
        wanted = set(arp) | set(ns)
        if not wanted:
            return set()
        socks = [self._open(ETH_P_ARP)] if arp else []
        socks += [self._open(ETH_P_IPV6)] if ns else []
        heard: set[tuple[str, str]] = set()
        frames = 0
        try:
            router_mac = _mac_text(socks[0].getsockname()[4][:6])
            for _ in range(tries):
                for ip, _mac in arp:
                    if (ip, _mac) not in heard:
                        socks[0].send(arp_request(router_mac, self.router_ip, ip))
                for ip, _mac in ns:
                    if (ip, _mac) not in heard:
                        socks[-1].send(neighbour_solicitation(router_mac, self.router_ip6 or "", ip))
                deadline = time.monotonic() + timeout / tries
                while heard != wanted and frames < MAX_FRAMES:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    ready, _, _ = select.select(socks, [], [], left)
                    for sock in ready:
                        try:
                            frame, address = sock.recvfrom(2048)
                        except BlockingIOError:
                            continue
                        frames += 1
                        if address[2] == PACKET_OUTGOING:
                            continue
                        got = parse_arp_reply(frame) if sock is socks[0] and arp else parse_na(frame)
                        if got in wanted:
                            heard.add(got)
                if heard == wanted:
                    break
        finally:
            for sock in socks:
                sock.close()
        return heard
