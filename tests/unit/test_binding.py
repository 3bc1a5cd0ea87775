"""The pure rules of session binding: moves need a lease and a silent old address; IPv6 needs an answer."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import replace

from gateway.binding import rules
from gateway.binding.leases import parse_leases
from gateway.binding.probe import arp_request, neighbour_solicitation, parse_arp_reply, parse_na
from gateway.model.sessions import new_session

LAN, ROUTER = ipaddress.IPv4Network("10.42.0.0/24"), ipaddress.IPv4Address("10.42.0.1")
MAC, OTHER = "02:00:00:00:01:01", "02:00:00:00:01:09"
NOW = 1_800_000_000.0


def session(mac=MAC, ip="10.42.0.100"):
    return new_session(mac=mac, ip=ip, kind="voucher", plan="p", now=NOW, expires_at=NOW + 3600, down=1, up=1)


def test_leases_are_read_from_dnsmasqs_file():
    text = (
        f"{int(NOW) + 60} {MAC} 10.42.0.150 phone1 01:{MAC}\n"
        f"{int(NOW) - 1} {OTHER} 10.42.0.151 * *\n"  # expired
        "0 02:00:00:00:01:03 10.42.0.152 * *\n"  # infinite
        "garbage line\n"
        "duid 00:01:00:01\n"
        f"{int(NOW) + 60} 1234 2001:db8::5 * 00:01\n"
    )
    assert parse_leases(text, NOW) == {MAC: "10.42.0.150", "02:00:00:00:01:03": "10.42.0.152"}


def test_a_move_needs_a_lease_on_the_new_address_and_silence_at_the_old():
    s, other = session(), session(OTHER, "10.42.0.120")
    leases = {MAC: "10.42.0.150", OTHER: "10.42.0.120"}
    candidates = rules.plan_move_candidates([s, other], leases, LAN, ROUTER)
    assert candidates == {s.sid: "10.42.0.150"}
    assert rules.decide_moves([s, other], candidates, answered=set()) == ({s.sid: "10.42.0.150"}, {})
    still_there = {("10.42.0.100", MAC)}
    assert rules.decide_moves([s, other], candidates, still_there) == ({}, {s.sid: "10.42.0.150"})
    # no lease, the same lease, an address outside the LAN, the router's, another session's
    for lease in (None, "10.42.0.100", "192.0.2.7", "10.42.0.1", "10.42.0.120"):
        got = rules.plan_move_candidates([s, other], {MAC: lease} if lease else {}, LAN, ROUTER)
        assert got == {}, lease


def test_a_session_whose_address_went_to_another_mac_is_known():
    s, other = session(), session(OTHER, "10.42.0.120")
    assert rules.leased_to_others([s, other], {OTHER: "10.42.0.100"}) == {s.sid}
    assert rules.leased_to_others([s, other], {MAC: "10.42.0.100", OTHER: "10.42.0.120"}) == set()
    assert rules.leased_to_others([s], {}) == set(), "no lease (a static address): nothing known"


def test_ipv6_addresses_are_authorized_only_once_answered_and_at_most_four():
    s = session()
    seen = {MAC: {f"2001:db8:42::{i}" for i in range(1, 8)} | {"fe80::1"}}
    plan = rules.plan_ip6([s], seen, {}, {}, NOW)
    assert plan.authorized == {} and len(plan.probe) == 7, "nothing before an answer; link-local skipped"
    verified = {(MAC, f"2001:db8:42::{i}"): NOW - i for i in range(1, 8)}
    plan = rules.plan_ip6([s], seen, verified, {}, NOW)
    assert plan.authorized == {MAC: {f"2001:db8:42::{i}" for i in range(1, 5)}}, "the four latest"
    assert plan.probe == []
    old = rules.plan_ip6([s], seen, {k: NOW - rules.VERIFIED_FOR for k in verified}, {}, NOW)
    assert old.authorized == {} and len(old.probe) == 7, "answers age out and are asked again"
    failed = rules.plan_ip6([s], seen, {}, {(MAC, "2001:db8:42::1"): NOW - 1}, NOW)
    assert ("2001:db8:42::1", MAC) not in failed.probe, "not asked again at once"
    flood = {MAC: {f"2001:db8:42::{i:x}" for i in range(1, 200)}}
    assert len(rules.plan_ip6([s], flood, {}, {}, NOW).probe) == rules.MAX_PROBES


def _eth(src: str, dst: str, kind: int) -> bytes:
    return bytes.fromhex(dst.replace(":", "")) + bytes.fromhex(src.replace(":", "")) + struct.pack("!H", kind)


def _arp_reply(eth_src: str, sender_mac: str, sender_ip: str) -> bytes:
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + bytes.fromhex(sender_mac.replace(":", ""))
    body += ipaddress.IPv4Address(sender_ip).packed + b"\0" * 10
    return _eth(eth_src, "02:00:00:00:00:01", 0x0806) + body


def test_only_an_answer_from_the_mac_itself_counts():
    request = arp_request("02:00:00:00:00:01", "10.42.0.1", "10.42.0.100")
    assert request[:6] == b"\xff" * 6 and request[38:42] == ipaddress.IPv4Address("10.42.0.100").packed
    assert parse_arp_reply(_arp_reply(MAC, MAC, "10.42.0.100")) == ("10.42.0.100", MAC)
    assert parse_arp_reply(_arp_reply(OTHER, MAC, "10.42.0.100")) is None, "planted from another MAC"
    assert parse_arp_reply(request) is None, "a request is not an answer"


def _na(eth_src: str, target: str, tlla: str, flags: int = 0x60) -> bytes:
    icmp = struct.pack("!BBHB3x", 136, 0, 0, flags) + ipaddress.IPv6Address(target).packed
    icmp += struct.pack("!BB", 2, 1) + bytes.fromhex(tlla.replace(":", ""))
    ip6 = struct.pack("!IHBB", 6 << 28, len(icmp), 58, 255) + b"\0" * 32
    return _eth(eth_src, "02:00:00:00:00:01", 0x86DD) + ip6 + icmp


def test_a_neighbour_advertisement_counts_only_from_the_mac_it_advertises():
    ns = neighbour_solicitation("02:00:00:00:00:01", "fe80::1", "2001:db8:42::101")
    assert ns[:6] == bytes.fromhex("3333ff000101") and ns[14 + 40] == 135
    assert parse_na(_na(MAC, "2001:db8:42::101", MAC)) == ("2001:db8:42::101", MAC)
    assert parse_na(_na(OTHER, "2001:db8:42::101", MAC)) is None, "X is at <victim> said by another MAC"
    assert parse_na(_na(MAC, "2001:db8:42::101", MAC, flags=0x20)) is None, "unsolicited"


def test_pins_follow_the_sessions_and_the_newest_wins_an_address():
    from gateway.binding.pins import plan_pins

    old, new = session(), session(OTHER, "10.42.0.100")
    new = replace(new, started_at=NOW + 10)
    assert plan_pins([old]) == {"10.42.0.100": MAC}
    assert plan_pins([new, old]) == {"10.42.0.100": OTHER}, "the newest session holds the address"
    assert plan_pins([old], {MAC: {"2001:db8:42::1"}}) == {"10.42.0.100": MAC, "2001:db8:42::1": MAC}
