"""The nftables planners: ruleset rendering, set elements, diffs, batches, reading JSON back."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from gateway import config as config_mod
from gateway.firewall.guard import wanted_rules
from gateway.firewall.plan import (
    GRACE,
    MAX_TIMEOUT,
    Element,
    Present,
    Want,
    diff_batch,
    diff_elements,
    get_elements,
    parse_got,
    parse_set,
    plan_elements,
    rebuild_batch,
    session_elements,
)
from gateway.firewall.ruleset import config_statements, render_ruleset, ruleset_digest, shape_fingerprint
from gateway.model.sessions import new_session
from gateway.names import GUARD_MARK, GUARD_PREF
from gateway.neighbours import usable_ip6

NOW = 1_800_000_000.0
DATA = Path(__file__).resolve().parents[1] / "data"
CONFIG = """
[library]
id = "lab"
name = "Lab"

[network]
lan_interface = "lan0"
wan_interface = "wan0"
lan_address = "10.42.0.1/24"
admin_networks = ["10.42.0.0/28", "2001:db8:42::/64"]

[uplink]
down = "10mbit"
up = "10mbit"

[walled_garden]
hosts = ["perpuseru.id"]
networks = ["203.0.113.0/24"]
"""
MAC1, MAC2 = "02:00:00:00:01:01", "02:00:00:00:01:02"


def session(mac=MAC1, ip="10.42.0.100", minutes=60, started=NOW, sid=None):
    s = new_session(mac=mac, ip=ip, kind="admin", plan="", now=started, expires_at=started + minutes * 60,
                    down=1, up=1)  # fmt: skip
    return replace(s, sid=sid) if sid else s


@pytest.fixture
def config():
    return config_mod.loads(CONFIG, "hotspot.toml")


def test_ruleset_matches_the_golden_file(config):
    golden = DATA / "hotspot.lab.nft"
    text = render_ruleset(config)
    if os.environ.get("HOTSPOT_UPDATE_GOLDEN") == "1":
        golden.write_text(text)
    assert text == golden.read_text(), (
        "template changed: HOTSPOT_UPDATE_GOLDEN=1 pytest ... and review the diff"
    )


def test_ruleset_digest_follows_the_values(config):
    other = config_mod.loads(CONFIG.replace('"lan0"', '"br-lan"'), "hotspot.toml")
    assert ruleset_digest(config) != ruleset_digest(other)
    assert 'iifname "br-lan" jump from_lan' in render_ruleset(other)
    assert ruleset_digest(config) in render_ruleset(config)


def test_config_statements_fill_the_fixed_sets(config):
    assert config_statements(config) == [
        "add element inet hotspot admin4 { 10.42.0.0/28 }",
        "add element inet hotspot admin6 { 2001:db8:42::/64 }",
        "add element inet hotspot walled_nets4 { 203.0.113.0/24 }",
    ]


def test_session_elements_pair_mac_and_ip():
    s = session(mac="02-00-00-00-01-0A")
    assert session_elements(s) == [
        Element("auth4", ("02:00:00:00:01:0a", "10.42.0.100")),
        Element("down4", ("10.42.0.100",)),
    ]
    with_v6 = session_elements(s, ["2001:db8:42::101", "fe80::1", "2001:DB8:42:0::101"])
    assert Element("auth6", ("02:00:00:00:01:0a", "2001:db8:42::101")) in with_v6
    assert Element("down6", ("2001:db8:42::101",)) in with_v6
    assert len(with_v6) == 4, "link-local never, duplicates once"


@pytest.mark.parametrize(
    ("text", "usable"),
    [("2001:db8::1", True), ("fe80::1", False), ("ff02::1", False), ("::", False), ("::ffff:10.0.0.1", False),
     ("nonsense", False)],
)  # fmt: skip
def test_usable_ip6(text, usable):
    assert (usable_ip6(text) is not None) == usable


def test_plan_elements_timeouts_and_skips():
    ok = session(minutes=10)
    over = session(mac=MAC2, ip="10.42.0.101", minutes=1, started=NOW - 120)
    bad = replace(session(mac=MAC2, ip="10.42.0.102"), ip="not-an-ip")
    evil = session(mac=MAC2, ip="10.42.0.103", sid='x" ; flush ruleset ; "')
    wanted, invalid = plan_elements([ok, over, bad, evil], NOW)
    assert set(wanted) == set(session_elements(ok)), "time is up: no element"
    assert all(w == Want(ok.sid, 600 + GRACE) for w in wanted.values())
    assert sorted(invalid) == sorted([bad.sid, evil.sid])
    long = session(minutes=90 * 24 * 60)
    assert {w.timeout for w in plan_elements([long], NOW)[0].values()} == {MAX_TIMEOUT}


def test_newest_session_wins_a_shared_ip():
    old = session(mac=MAC1, started=NOW - 600)
    new = session(mac=MAC2, started=NOW - 10)
    wanted, _ = plan_elements([new, old], NOW)
    assert wanted[Element("down4", ("10.42.0.100",))].sid == new.sid
    assert wanted[Element("auth4", (MAC1, "10.42.0.100"))].sid == old.sid


def test_diff_sorts_elements_into_add_replace_refresh_remove():
    a, b = session(sid="aaaa"), session(mac=MAC2, ip="10.42.0.101", sid="bbbb")
    wanted, _ = plan_elements([a, b], NOW)
    t = 3600 + GRACE
    present = {
        Element("auth4", (MAC1, "10.42.0.100")): Present("aaaa", t - 5, 10, 1),  # fine
        Element("down4", ("10.42.0.100",)): Present("aaaa", t - 100),  # timeout off
        Element("auth4", (MAC2, "10.42.0.101")): Present("old-session", t),  # someone else's
        Element("auth4", (MAC2, "10.42.0.200")): Present("gone", 50),  # nobody's
        Element("walled4", ("192.0.2.7",)): Present("", 3000),  # not ours to judge
    }
    diff = diff_elements(wanted, present)
    assert diff.counts() == {"added": 1, "replaced": 1, "refreshed": 1, "removed": 1, "unchanged": 1}
    batch = diff_batch(diff)
    assert "delete element inet hotspot auth4 { 02:00:00:00:01:02 . 10.42.0.200 }" in batch
    assert 'comment "bbbb"' in batch and "counter packets 0 bytes 0" in batch
    assert "walled4" not in batch
    assert diff_batch(diff_elements(wanted, {e: Present(w.sid, w.timeout) for e, w in wanted.items()})) == ""


def test_rebuild_keeps_counters_of_the_same_session_and_the_walled_garden(config):
    a = session(sid="aaaa")
    wanted, _ = plan_elements([a], NOW)
    present = {
        Element("auth4", (MAC1, "10.42.0.100")): Present("aaaa", 10, 5000, 7),
        Element("down4", ("10.42.0.100",)): Present("zzzz", 10, 9999, 9),  # another session's counter
        Element("walled4", ("192.0.2.7",)): Present("", 1200.0),
    }
    batch = rebuild_batch(render_ruleset(config), config_statements(config), wanted, present)
    lines = batch.splitlines()
    assert lines[:2] == ["table inet hotspot", "delete table inet hotspot"]
    assert any("10.42.0.100 counter packets 7 bytes 5000" in line for line in lines)
    assert any("down4 { 10.42.0.100 counter packets 0 bytes 0" in line for line in lines)
    assert "add element inet hotspot walled4 { 192.0.2.7 timeout 1200000ms }" in lines


LISTING = {
    "nftables": [
        {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
        {"set": {"family": "inet", "name": "auth4", "table": "hotspot", "type": ["ether_addr", "ipv4_addr"],
                 "handle": 2, "flags": ["timeout"], "elem": [
                     {"elem": {"val": {"concat": ["02:00:00:00:01:0A", "10.42.0.100"]}, "timeout": 3660,
                               "expires": 3600, "comment": "aaaa", "counter": {"packets": 3, "bytes": 252}}},
                     {"elem": {"val": {"concat": ["02:00:00:00:01:02", "10.42.0.101"]},
                               "counter": {"packets": 0, "bytes": 0}}}]}},
        {"set": {"family": "inet", "name": "down6", "table": "hotspot", "type": "ipv6_addr", "handle": 3,
                 "elem": ["2001:DB8:42:0::101"]}},
        {"chain": {"family": "inet", "table": "hotspot", "name": "forward", "handle": 9}},
    ]
}  # fmt: skip


def test_parse_set_reads_keys_comments_timeouts_counters():
    auth = parse_set(LISTING, "auth4")
    assert auth[Element("auth4", ("02:00:00:00:01:0a", "10.42.0.100"))] == Present("aaaa", 3600.0, 252, 3)
    assert auth[Element("auth4", (MAC2, "10.42.0.101"))] == Present("", None, 0, 0)
    assert parse_set(LISTING, "down6") == {Element("down6", ("2001:db8:42::101",)): Present()}
    assert parse_set(LISTING, "walled4") == {}


GOT = """table inet hotspot {
	set auth4 {
		type ether_addr . ipv4_addr
		flags timeout
		elements = { 02:00:00:00:01:0A . 10.42.0.100 counter packets 3 bytes 252 timeout 1h1m \
expires 59m58s comment "aaaa" }
	}
}
table inet hotspot {
	set down6 {
		type ipv6_addr
		flags timeout
		elements = { 2001:DB8:42:0::101 counter packets 0 bytes 0 timeout 1h comment "bbbb" }
	}
}
"""


def test_parse_got_reads_the_counters_of_get_element_in_nft_syntax_or_json():
    want = {
        Element("auth4", ("02:00:00:00:01:0a", "10.42.0.100")): Present("aaaa", None, 252, 3),
        Element("down6", ("2001:db8:42::101",)): Present("bbbb", None, 0, 0),
    }
    assert parse_got(GOT) == want
    assert get_elements(want) == [
        "get element inet hotspot auth4 { 02:00:00:00:01:0a . 10.42.0.100 }",
        "get element inet hotspot down6 { 2001:db8:42::101 }",
    ]
    # a libnftables that answers in JSON: one listing per get
    auth = parse_got(json.dumps(LISTING) + "\n")
    assert auth[Element("auth4", ("02:00:00:00:01:0a", "10.42.0.100"))].bytes == 252
    assert parse_got("") == {}


def test_fingerprint_ignores_handles_and_elements():
    moved = {"nftables": [dict(item) for item in LISTING["nftables"]]}
    moved["nftables"][1] = {"set": {**LISTING["nftables"][1]["set"], "handle": 77, "elem": []}}
    assert shape_fingerprint(LISTING) == shape_fingerprint(moved) != ""
    flushed = {"nftables": LISTING["nftables"][:3]}
    assert shape_fingerprint(flushed) != shape_fingerprint(LISTING)
    assert shape_fingerprint(None) == "" and shape_fingerprint({"nftables": [LISTING["nftables"][0]]}) == ""


def test_ruleset_limits_visitors_before_login_and_fails_closed(config):
    """Issue 16, items 1, 6, 11, 12: the values the ruleset renders from the config."""
    text = render_ruleset(config)
    assert "fib saddr . iif oif missing drop" in text, "anti-spoofing before anything answers"
    assert f"meta mark set meta mark | 0x{GUARD_MARK:08x}" in text, "the guard's mark"
    dhcp = config.dhcp
    assert f"limit rate over {dhcp.dns_before_login} bytes/second" in text
    assert f"limit rate over {dhcp.dns_before_login_total} bytes/second" in text
    assert f"limit rate over {dhcp.per_device_per_minute}/minute" in text
    assert 'iifname "lan0" drop' in text, "an emptied from_lan closes"
    other = config_mod.loads(CONFIG + '\n[dhcp]\ndns_before_login = "8kbit"\n', "hotspot.toml")
    assert "limit rate over 1000 bytes/second" in render_ruleset(other)


def test_guard_rules_pass_marked_lan_packets_and_blackhole_the_rest():
    rules = wanted_rules("lan0")
    assert len(rules) == 4 and {r.iifname for r in rules} == {"lan0"}
    passing = [r for r in rules if r.fwmask]
    assert all(r.priority == GUARD_PREF and r.fwmark == GUARD_MARK and r.table == 254 for r in passing)
    assert all(r.priority == GUARD_PREF + 1 and r.action == 6 for r in rules - set(passing))
