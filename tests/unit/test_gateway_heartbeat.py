"""The gateway's heartbeat: only a missing or stale one lets a tool act on the kernel in its place."""

from __future__ import annotations

import json

from gateway.model import commands, keys

NOW = 1_800_000_000.0


def _beat(r, at: float) -> None:
    r.set(keys.GATEWAY_HEARTBEAT, json.dumps({"pid": 42, "at": at}))


def test_heartbeat_ttl_is_three_passes_at_least_ten_seconds():
    assert commands.heartbeat_ttl(2) == 10
    assert commands.heartbeat_ttl(5) == 15
    assert commands.heartbeat_ttl(4.5) == 14


def test_a_fresh_heartbeat_is_a_live_gateway(r):
    _beat(r, NOW - 9)
    assert commands.live_gateway(r, NOW, 2) == {"pid": 42, "at": NOW - 9}


def test_absent_stale_or_garbled_heartbeats_are_a_gateway_down(r):
    assert commands.live_gateway(r, NOW, 2) is None
    _beat(r, NOW - 11)
    assert commands.live_gateway(r, NOW, 2) is None
    for raw in ("{not json", json.dumps({"pid": 42}), json.dumps([1, 2]), json.dumps({"at": "soon"})):
        r.set(keys.GATEWAY_HEARTBEAT, raw)
        assert commands.live_gateway(r, NOW, 2) is None, raw
