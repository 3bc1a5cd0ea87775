"""The tc planner: fair shares, leaf sizing, slots, and the whole tree (golden file)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from gateway import config as config_mod
from gateway.lab.topology import lab_config_text
from gateway.shaping.model import (
    FREE_CLASS,
    LOCAL_CLASS,
    MAX_SLOT,
    ROOT_QDISC,
    UNAUTH_CLASS,
    UPLINK_CLASS,
    WEB_UNAUTH_CLASS,
    client_class,
    describe,
    slot_of_class,
)
from gateway.shaping.plan import (
    FRAME_OVERHEAD,
    ShapingSettings,
    client_caps,
    client_objects,
    client_rates,
    client_shape,
    leaf_limit,
    line_rate,
    plan_tc,
    settings_from_config,
)
from gateway.shaping.shares import assign_slots, bytes_rate, fair_shares

DATA = Path(__file__).resolve().parents[1] / "data"
MBIT = 1_000_000


@dataclass
class FakeSession:
    slot: int
    ip: str
    down: int
    up: int
    weight: float = 1.0
    mac: str = ""
    kind: str = "voucher"

    def __post_init__(self):
        self.mac = self.mac or f"02:00:00:00:01:{self.slot:02x}"


SETTINGS = ShapingSettings(
    lan_interface="lan0",
    ifb_interface="ifb-lan0",
    router_ip=ipaddress.IPv4Address("10.42.0.1"),
    lan_network=ipaddress.IPv4Network("10.42.0.0/24"),
    uplink_down=10 * MBIT,
    uplink_up=10 * MBIT,
    headroom=0.95,
)


@pytest.mark.parametrize(
    ("demands", "pool", "expected"),
    [
        # equal weights, nobody capped: an equal split
        ([(1, 10 * MBIT)] * 4, 8 * MBIT, [2 * MBIT] * 4),
        # weights 2:1:1
        ([(2, 10 * MBIT), (1, 10 * MBIT), (1, 10 * MBIT)], 8 * MBIT, [4 * MBIT, 2 * MBIT, 2 * MBIT]),
        # a capped client leaves its unused share to the others
        ([(1, 1 * MBIT), (1, 10 * MBIT), (1, 10 * MBIT)], 9 * MBIT, [1 * MBIT, 4 * MBIT, 4 * MBIT]),
        # the lab's plans: gratis (0.5, 1mbit), harian (1, 4mbit), kelas (2, 6mbit)
        (
            [(0.5, 1 * MBIT), (1, 4 * MBIT), (2, 6 * MBIT)],
            9 * MBIT,
            [1 * MBIT, 8 * MBIT // 3 // 8 * 8, 5333328],
        ),
        # everyone capped below the pool: each gets its cap, the rest is left to borrow
        ([(1, 1 * MBIT), (1, 2 * MBIT)], 9 * MBIT, [1 * MBIT, 2 * MBIT]),
        # many clients on a thin line: never below the minimum guarantee
        ([(1, 4 * MBIT)] * 2000, 9 * MBIT, [8000] * 2000),
        ([], 9 * MBIT, []),
    ],
)
def test_fair_shares(demands, pool, expected):
    shares = fair_shares(demands, pool)
    assert shares == expected
    assert all(s % 8 == 0 for s in shares), "whole bytes per second"


def test_fair_shares_never_exceed_the_pool_or_a_cap():
    demands = [(w, cap) for w in (0.5, 1, 2, 3) for cap in (512_000, 2 * MBIT, 6 * MBIT)]
    shares = fair_shares(demands, 9_500_000)
    assert sum(shares) <= 9_500_000
    assert all(s <= cap for s, (_w, cap) in zip(shares, demands, strict=True))
    # uncapped clients get shares in proportion to their weights
    level = {s / w for s, (w, cap) in zip(shares, demands, strict=True) if s < cap}
    assert max(level) - min(level) < 16


def test_line_rate_compensates_ethernet_framing():
    assert line_rate(2 * MBIT) == 2_091_160
    assert line_rate(2 * MBIT) / FRAME_OVERHEAD == pytest.approx(2 * MBIT, rel=1e-4)
    assert line_rate(1000) % 8 == 0


@pytest.mark.parametrize(
    ("rate", "packets"),
    [
        (512_000, 10),  # one packet is 24 ms at this rate: the TCP minimum wins
        (2 * MBIT, 10),
        (9_500_000, 16),  # 20 ms at 9.5 Mbit/s
        (100 * MBIT, 166),
        (10_000 * MBIT, 1000),  # capped
    ],
)
def test_leaf_limit_holds_about_20ms(rate, packets):
    assert leaf_limit(rate) == packets


def test_client_handles_follow_the_slot():
    assert client_class(1) == 0x10011
    assert slot_of_class(0x10011) == 1
    assert slot_of_class(client_class(MAX_SLOT)) == MAX_SLOT
    for infra in (ROOT_QDISC, UPLINK_CLASS, UNAUTH_CLASS, LOCAL_CLASS, 0x20011):
        assert slot_of_class(infra) is None
    with pytest.raises(ValueError):
        client_class(0)
    with pytest.raises(ValueError):
        client_class(MAX_SLOT + 1)


@pytest.mark.parametrize(
    ("current", "order", "reserved", "changes"),
    [
        ({"a": 1, "b": 2}, ["a", "b"], (), {}),
        ({"a": 0, "b": 0}, ["a", "b"], (), {"a": 1, "b": 2}),
        # the lowest free slot, around the ones in use
        ({"a": 1, "b": 3, "c": 0}, ["a", "b", "c"], (), {"c": 2}),
        # two sessions claim one slot: the older keeps it
        ({"a": 2, "b": 2}, ["a", "b"], (), {"b": 1}),
        # a class still in the kernel is not handed to a newcomer
        ({"a": 0}, ["a"], (1, 2), {"a": 3}),
        # out of range is treated as none
        ({"a": MAX_SLOT + 1}, ["a"], (), {"a": 1}),
    ],
)
def test_assign_slots(current, order, reserved, changes):
    assert assign_slots(current, order, reserved) == changes


def test_assign_slots_runs_out_without_failing_the_others():
    current = {f"s{i}": i for i in range(1, MAX_SLOT + 1)} | {"new": 0, "clash": 7}
    assert assign_slots(current, list(current)) == {"clash": 0}  # "new" had none, keeps none


LAB_SESSIONS = [
    FakeSession(1, "10.42.0.100", 4 * MBIT, 2 * MBIT, 1.0),  # harian
    FakeSession(2, "10.42.0.101", 6 * MBIT, 3 * MBIT, 2.0),  # kelas
    FakeSession(7, "10.42.0.200", 1 * MBIT, 512_000, 0.5),  # gratis
    FakeSession(0, "10.42.0.102", 4 * MBIT, 2 * MBIT),  # no slot yet: no class
    FakeSession(3, "192.168.9.9", 4 * MBIT, 2 * MBIT),  # not on the LAN: no class
    FakeSession(4, "2001:db8:42::100", 4 * MBIT, 2 * MBIT),  # no IPv4 address: no class
]


def test_plan_matches_the_golden_file():
    plan = plan_tc(SETTINGS, LAB_SESSIONS)
    text = "\n".join(["# download", *describe(plan.down), "# upload", *describe(plan.up)]) + "\n"
    golden = DATA / "tc_plan_lab.txt"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(text)
    assert text == golden.read_text()


def test_plan_is_deterministic_and_consistent():
    plan = plan_tc(SETTINGS, LAB_SESSIONS)
    assert plan == plan_tc(SETTINGS, list(reversed(LAB_SESSIONS)))
    for tree in (plan.down, plan.up):
        classes = tree.class_map()
        clients = [c for c in tree.classes if slot_of_class(c.handle)]
        assert {slot_of_class(c.handle) for c in clients} == {1, 2, 7}
        # guarantees fit in the uplink; caps never exceed it
        uplink = classes[UPLINK_CLASS]
        unauth = classes[UNAUTH_CLASS].rate + (
            classes[WEB_UNAUTH_CLASS].rate if WEB_UNAUTH_CLASS in classes else 0
        )
        assert sum(c.rate for c in clients) + unauth <= uplink.rate
        assert all(c.rate <= c.ceil <= uplink.ceil for c in clients)
        # every class but the inner uplink class has a leaf; every filter points at a class
        assert {leaf.parent for leaf in tree.leaves} == set(classes) - {UPLINK_CLASS}
        assert all(f.target in classes for f in tree.filters if f.target)
        assert tree.default == UNAUTH_CLASS


def test_plan_with_no_clients_keeps_the_skeleton():
    plan = plan_tc(SETTINGS, [])
    assert {c.handle for c in plan.down.classes} == {UPLINK_CLASS, UNAUTH_CLASS, LOCAL_CLASS}
    assert {c.handle for c in plan.up.classes} == {UPLINK_CLASS, UNAUTH_CLASS, LOCAL_CLASS, WEB_UNAUTH_CLASS}
    # router, IPv4 table and link, IPv6 table and link; ARP on the LAN side, web requests on the IFB
    assert len(plan.up.filters) == 6 and len(plan.down.filters) == 6


def test_plan_rejects_an_unknown_leaf():
    from dataclasses import replace

    with pytest.raises(ValueError, match="leaf kind"):
        plan_tc(replace(SETTINGS, leaf_kind="sfq"), [])
    plan = plan_tc(replace(SETTINGS, leaf_kind="fq_codel"), LAB_SESSIONS)
    assert {leaf.kind for leaf in plan.down.leaves} == {"fq_codel"}


def test_settings_from_the_lab_config(tmp_path):
    text = lab_config_text(tmp_path)
    config = config_mod.loads(text, tmp_path / "hotspot.toml")
    settings = settings_from_config(config, "pfifo")
    assert settings.free_share == 0.25, "the lab offers a free plan: free sessions share one class"
    assert replace(settings, free_share=0.0) == SETTINGS


def test_absurd_caps():
    plan = plan_tc(SETTINGS, [FakeSession(1, "10.42.0.100", 0, 0), FakeSession(2, "10.42.0.101", 1, 1)])
    classes = plan.down.class_map()
    # no cap: the whole line; a 1 bit/s cap: the floor, enough to load a page
    assert classes[client_class(1)].ceil == classes[UPLINK_CLASS].ceil == 9_500_000
    assert classes[client_class(2)].ceil == line_rate(64_000)


def test_one_clients_objects_and_everyones_rates_are_the_plans():
    clients = [
        FakeSession(n, f"10.42.0.{100 + n}", (n % 3 + 1) * MBIT, MBIT, 0.5 * (n % 3 + 1)) for n in range(1, 9)
    ]
    plan = plan_tc(SETTINGS, clients)
    shapes = [client_shape(SETTINGS, c) for c in clients]
    rates, _waters = client_rates(SETTINGS, shapes)
    for shape in shapes:
        objects = client_objects(SETTINGS, shape, rates[shape.slot])
        for part, full in ((objects.down, plan.down), (objects.up, plan.up)):
            assert set(part.classes) <= set(full.classes)
            assert set(part.leaves) <= set(full.leaves)
            assert set(part.filters) <= set(full.filters)
    assert client_shape(SETTINGS, FakeSession(0, "10.42.0.99", 1, 1)) is None


def test_admitting_one_more_costs_nothing_and_is_close_to_a_new_split():
    from gateway.shaping.shares import split

    demands = [(1.0, 10 * MBIT)] * 60 + [(0.5, 64_000)] * 20  # the latter held at their caps
    pool = 9_025_000
    before, water = split(demands, pool)
    share, after = water.admit(1.0, 10 * MBIT)
    exact, _ = split([*demands, (1.0, 10 * MBIT)], pool)
    assert abs(share - exact[-1]) <= 0.02 * exact[-1]
    # the others keep theirs, each within the tolerance of its exact new share
    assert all(abs(b - e) <= 0.02 * e for b, e in zip(before, exact, strict=False))
    assert (water.capped, water.weight, after.weight) == (20 * 64_000, 60.0, 61.0)
    assert after.release(1.0, 10 * MBIT, share) == water
    assert water.release(0.5, 64_000, 64_000).capped == 19 * 64_000


# --- free sessions share one class (issue 16, item 5) ---

FREE_SETTINGS = replace(SETTINGS, free_share=0.25)


def _free_and_paying() -> list[FakeSession]:
    free = [FakeSession(n, f"10.42.0.{100 + n}", MBIT, MBIT, 0.5, kind="free") for n in range(1, 9)]
    return [*free, FakeSession(9, "10.42.0.109", 4 * MBIT, 2 * MBIT, 1.0)]


def test_free_sessions_hang_under_one_capped_class():
    plan = plan_tc(FREE_SETTINGS, _free_and_paying())
    for tree in (plan.down, plan.up):
        classes = {c.handle: c for c in tree.classes}
        free_class = classes[FREE_CLASS]
        assert free_class.parent == UPLINK_CLASS
        assert free_class.ceil == bytes_rate(0.25 * 0.95 * 10 * MBIT)
        free = [classes[client_class(n)] for n in range(1, 9)]
        assert all(c.parent == FREE_CLASS and c.ceil <= free_class.ceil for c in free)
        # 8 free sessions (8 MACs of one phone) are guaranteed no more than the free class
        assert sum(c.rate for c in free) <= free_class.rate
        paying = classes[client_class(9)]
        assert paying.parent == UPLINK_CLASS
        guaranteed = sum(c.rate for c in classes.values() if c.parent == UPLINK_CLASS)
        assert guaranteed <= classes[UPLINK_CLASS].rate


def test_free_sessions_objects_match_the_plan():
    sessions = _free_and_paying()
    plan = plan_tc(FREE_SETTINGS, sessions)
    shapes = [client_shape(FREE_SETTINGS, s) for s in sessions]
    rates, _waters = client_rates(FREE_SETTINGS, shapes)
    for shape in shapes:
        objects = client_objects(FREE_SETTINGS, shape, rates[shape.slot])
        for part, full in ((objects.down, plan.down), (objects.up, plan.up)):
            assert set(part.classes) <= set(full.classes)
    assert client_caps(FREE_SETTINGS, shapes[0])[0] < client_caps(FREE_SETTINGS, shapes[-1])[0]


def test_without_a_free_plan_free_sessions_are_like_the_others():
    plan = plan_tc(SETTINGS, _free_and_paying())
    assert FREE_CLASS not in {c.handle for c in plan.down.classes}
    assert {c.parent for c in plan.down.classes if c.handle >= client_class(1)} == {UPLINK_CLASS}
