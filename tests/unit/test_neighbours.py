"""One neighbour rule for the gateway and the portal: reachable/stale/delay/probe/permanent, never NOARP."""

from __future__ import annotations

import socket

from gateway.neighbour_reader import usable_entries
from gateway.neighbours import parse_arp_table, usable
from portal import neighbours as portal_neighbours

NUD_INCOMPLETE, NUD_REACHABLE, NUD_STALE, NUD_DELAY, NUD_PROBE = 0x01, 0x02, 0x04, 0x08, 0x10
NUD_FAILED, NUD_NOARP, NUD_PERMANENT = 0x20, 0x40, 0x80
MAC = "02:00:00:00:01:01"


class _Msg(dict):
    """A neighbour message as pyroute2 gives it: ``msg["state"]`` and ``msg.get_attr(name)``."""

    def __init__(self, state: int, dst: str, mac: str | None):
        super().__init__(state=state)
        self.attrs = {
            "NDA_DST": dst,
            "NDA_LLADDR": mac,
            "NDA_CACHEINFO": {"ndm_confirmed": 250, "ndm_updated": 700},
        }

    def get_attr(self, name: str):
        return self.attrs.get(name)


class _FakeIPRoute:
    def __init__(self, messages: list[_Msg]):
        self.messages = messages

    def get_neighbours(self, family: int, ifindex: int, dst: str | None = None):
        return [m for m in self.messages if dst is None or m.get_attr("NDA_DST") == dst]


def test_the_rule():
    for state in (NUD_REACHABLE, NUD_STALE, NUD_DELAY, NUD_PROBE, NUD_PERMANENT):
        assert usable(state, MAC), hex(state)
    for state in (NUD_INCOMPLETE, NUD_FAILED, NUD_NOARP, 0):
        assert not usable(state, MAC), hex(state)
    assert not usable(NUD_REACHABLE, None)
    assert not usable(NUD_REACHABLE, "00:00:00:00:00:00")


def test_the_gateway_reader_refuses_noarp_like_the_portal():
    ipr = _FakeIPRoute(
        [
            _Msg(NUD_REACHABLE, "2001:db8::1", "02:00:00:00:01:0A"),
            _Msg(NUD_NOARP, "ff02::1", "33:33:00:00:00:01"),  # multicast: the MAC is computed, not heard
            _Msg(NUD_INCOMPLETE, "2001:db8::2", None),
            _Msg(NUD_PERMANENT, "2001:db8::3", "02:00:00:00:01:03"),
        ]
    )
    found = list(usable_entries(ipr, 1, socket.AF_INET6))
    assert found == [("2001:db8::1", "02:00:00:00:01:0a", 2.5), ("2001:db8::3", "02:00:00:00:01:03", 2.5)]
    assert list(usable_entries(ipr, 1, socket.AF_INET6, dst="ff02::1")) == []


def test_the_portal_uses_the_same_rule():
    assert portal_neighbours.parse_arp_table is parse_arp_table
    text = "IP address HW type Flags HW address Mask Device\n10.42.0.5 0x1 0x2 02:00:00:00:01:05 * lan0\n"
    assert parse_arp_table(text) == {("10.42.0.5", "lan0"): "02:00:00:00:01:05"}
