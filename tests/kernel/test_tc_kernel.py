"""The tc applier against the real kernel: apply, read back, apply again = no change."""

from __future__ import annotations

import dataclasses
import subprocess
import time

import pytest

from gateway.shaping.apply import PROBE_DEVICE, TcApplier
from gateway.shaping.diff import diff_tree
from gateway.shaping.model import client_class
from gateway.shaping.plan import plan_tc

from ..unit.test_tc_plan import LAB_SESSIONS, SETTINGS

pytestmark = pytest.mark.lab


@pytest.fixture
def applier(router_ns):
    with TcApplier(router_ns, "lan0", "ifb-lan0") as a:
        yield a


def _tc(ns: str, *argv: str) -> str:
    return subprocess.run(["ip", "netns", "exec", ns, "tc", *argv], check=True, capture_output=True,
                          text=True).stdout  # fmt: skip


def _assert_in_step(applier, plan):
    down, up = applier.diff(plan)
    assert down.is_empty(), down
    assert up.is_empty(), up
    assert applier.apply(plan).unchanged


def test_apply_read_back_apply_again(applier, router_ns):
    plan = plan_tc(SETTINGS, LAB_SESSIONS)
    first = applier.apply(plan)
    assert first.added > 30 and first.removed == 0
    _assert_in_step(applier, plan)
    # what the kernel holds is what was planned, record for record
    for tree in (plan.down, plan.up):
        state = applier.read(tree.device)
        assert state.classes == tree.class_map()
        assert set(state.leaves.values()) == set(tree.leaves)
        assert set(state.filters.values()) == set(tree.filters)
    # and tc itself sees the hash table, the redirect and the leaves
    filters = _tc(router_ns, "filter", "show", "dev", "lan0")
    assert "ht divisor 256" in filters and "hash mask 000000ff at 16" in filters
    assert "match 0a2a0064/ffffffff at 16" in filters
    assert "mirred" in _tc(router_ns, "filter", "show", "dev", "lan0", "ingress")
    assert "pfifo 11: parent 1:11 limit 10p" in _tc(router_ns, "qdisc", "show", "dev", "ifb-lan0")


def test_clients_come_change_and_go(applier):
    applier.apply(plan_tc(SETTINGS, LAB_SESSIONS))
    # a live limit on one client: its two classes (one per direction) change, nothing else
    limited = [dataclasses.replace(LAB_SESSIONS[0], down=1_000_000, up=512_000), *LAB_SESSIONS[1:]]
    plan = plan_tc(SETTINGS, limited)
    result = applier.apply(plan)
    assert (result.added, result.removed) == (0, 0) and result.changed >= 2
    assert applier.read("lan0").classes[client_class(1)].ceil == plan.down.class_map()[client_class(1)].ceil
    _assert_in_step(applier, plan)
    # one leaves: its IPv4 and IPv6 filters and its class (with its leaf) go on both sides
    plan = plan_tc(SETTINGS, limited[1:])
    result = applier.apply(plan)
    assert result.removed == 6 and result.added == 0
    _assert_in_step(applier, plan)
    # and everyone leaves
    plan = plan_tc(SETTINGS, [])
    applier.apply(plan)
    _assert_in_step(applier, plan)


def test_hand_edits_converge_back(applier, router_ns):
    plan = plan_tc(SETTINGS, LAB_SESSIONS)
    applier.apply(plan)
    _tc(router_ns, "qdisc", "del", "dev", "lan0", "root")
    _tc(router_ns, "qdisc", "del", "dev", "lan0", "ingress")
    _tc(router_ns, "class", "change", "dev", "ifb-lan0", "parent", "1:1", "classid", "1:12", "htb",
        "rate", "1kbit", "ceil", "1kbit")  # fmt: skip
    _tc(router_ns, "filter", "del", "dev", "ifb-lan0", "parent", "1:", "prio", "2", "handle", "2:64:1",
        "protocol", "ip", "u32")  # fmt: skip
    assert not applier.apply(plan).unchanged
    _assert_in_step(applier, plan)
    # someone else's root qdisc is replaced by ours
    _tc(router_ns, "qdisc", "replace", "dev", "lan0", "root", "handle", "5:", "pfifo")
    applier.apply(plan)
    _assert_in_step(applier, plan)
    # the IFB is gone: it comes back with its tree, and the redirect points at the new one
    subprocess.run(["ip", "-n", router_ns, "link", "del", "ifb-lan0"], check=True)
    applier.apply(plan)
    _assert_in_step(applier, plan)


def test_leaf_kind_is_probed_without_leaving_anything(applier):
    kind = applier.probe_leaf_kind()
    assert kind in ("fq_codel", "pfifo")
    assert applier.index(PROBE_DEVICE) is None


def test_counters_count_frames_per_client(applier, send_udp):
    plan = plan_tc(SETTINGS, LAB_SESSIONS)
    applier.apply(plan)
    before = applier.counters()
    assert before[1] == (0, 0)
    send_udp("10.42.0.100", count=5, size=1000)
    frames = 5 * (1000 + 8 + 20 + 14)  # UDP, IP and Ethernet headers: HTB counts frames
    deadline = time.monotonic() + 3
    while applier.counters()[1][0] < frames and time.monotonic() < deadline:
        time.sleep(0.02)  # the class sends at its rate; counters count what left
    after = applier.counters()
    assert after[1] == (frames, 0)
    assert after[2] == (0, 0)
    # classified by the hash table: nothing fell into the default class
    assert diff_tree(plan.down, applier.read("lan0")).is_empty()


def test_ipv6_goes_by_mac_and_upload_by_source(applier, send_udp, send_upload):
    plan = plan_tc(SETTINGS, LAB_SESSIONS)
    applier.apply(plan)
    kelas = LAB_SESSIONS[1]  # slot 2
    send_udp("2001:db8:42::102", count=4, size=1000, mac=kelas.mac)
    send_upload(kelas.mac, "2001:db8:42::102", count=3, size=500)
    send_upload(kelas.mac, kelas.ip, count=2, size=500)
    v6_down = 4 * (1000 + 8 + 40 + 14)
    up = 3 * (500 + 8 + 40 + 14) + 2 * (500 + 8 + 20 + 14)
    deadline = time.monotonic() + 3
    while applier.counters()[2] != (v6_down, up) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert applier.counters()[2] == (v6_down, up)
    assert applier.counters()[1] == (0, 0)


def test_leaf_lengths_follow_the_shares(applier):
    fast = dataclasses.replace(SETTINGS, uplink_down=100_000_000, uplink_up=100_000_000)
    alone = [dataclasses.replace(LAB_SESSIONS[0], down=40_000_000)]
    applier.apply(plan_tc(fast, alone))
    assert applier.read("lan0").leaves[client_class(1)].limit == 70  # 20 ms at 41.8 Mbit/s
    crowd = alone + [
        dataclasses.replace(LAB_SESSIONS[0], slot=n, ip=f"10.42.0.{100 + n}", down=40_000_000)
        for n in range(2, 12)
    ]
    plan = plan_tc(fast, crowd)
    result = applier.apply(plan)
    assert result.changed >= 2  # its class and its leaf, at least
    # eleven share 90 Mbit/s: 8.2 Mbit/s each, 20 ms of which is 14 frames
    assert applier.read("lan0").leaves[client_class(1)].limit == 14
    _assert_in_step(applier, plan)


def test_a_failed_change_names_it_and_the_rest_still_happens(applier):
    from gateway.shaping.model import UNAUTH_CLASS, TcChange, TcClass
    from gateway.shaping.netlink import TcError

    applier.apply(plan_tc(SETTINGS, []))
    applier.queue([
        TcChange("add", "lan0", TcClass(UNAUTH_CLASS, 0x10001, 8000, 8000, 300)),  # exists already
        TcChange("add", "lan0", TcClass(0x10099, 0x10001, 8000, 8000, 300)),
    ])  # fmt: skip
    with pytest.raises(TcError, match="add class 0x10002: File exists"):
        applier.commit()
    assert 0x10099 in applier.read("lan0").classes
    # a device that is not there is named, and nothing is queued for it
    with pytest.raises(TcError, match="no device nope0"):
        applier.queue([TcChange("del", "nope0", TcClass(0x10099, 0x10001, 8000, 8000, 300))])
    assert applier.commit() == 0


def test_a_book_entry_lands_as_the_full_plan_would_have_it(applier):
    from gateway.shaping.book import ShareBook

    from ..unit.test_tc_book import SETTINGS as BOOK_SETTINGS
    from ..unit.test_tc_book import phone

    book = ShareBook(BOOK_SETTINGS)
    step = book.begin_pass([phone(1), phone(2)], {}, 0.0)
    applier.apply(step.plan)
    book.end_pass(step)
    entry = book.login(phone(3))
    applier.queue(entry.changes)  # before the reply: the newcomer's own objects
    applier.commit()
    applier.queue(entry.later)  # after it: the line split among the three
    applier.commit()
    # what the kernel holds now is what a pass over all three plans: nothing left to do
    _assert_in_step(applier, plan_tc(BOOK_SETTINGS, list(book.sessions.values())))
    applier.queue(book.logout(book.sessions["s1"]).changes)
    applier.commit()
    _assert_in_step(applier, plan_tc(BOOK_SETTINGS, list(book.sessions.values())))


def test_receive_aggregation_is_turned_off_where_shaped_traffic_comes_in(router_ns):
    from pyroute2.ethtool import Ethtool

    from gateway.nsenter import in_netns

    with in_netns(router_ns):
        ethtool = Ethtool()
    try:
        features = ethtool.get_features("lan0")
        features.features["rx-gro"].enable = True
        ethtool.set_features("lan0", features)
        assert ethtool.get_features("lan0").features["rx-gro"].enable
        with TcApplier(router_ns, "lan0", "ifb-lan0") as applier:
            applier.apply(plan_tc(SETTINGS, LAB_SESSIONS))
        assert not ethtool.get_features("lan0").features["rx-gro"].enable
    finally:
        ethtool.close()
