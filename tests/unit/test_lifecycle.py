"""Accounting from element counters, session ends, IP moves, the doctor's report."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gateway.daemon.lifecycle import account, plan_ends
from gateway.firewall.doctor import diagnose
from gateway.firewall.enforce import KernelView
from gateway.firewall.plan import Element, Present
from gateway.model.sessions import new_session
from gateway.neighbours import NeighbourTable

NOW = 1_800_000_000.0
MAC = "02:00:00:00:01:01"
UP = Element("auth4", (MAC, "10.42.0.100"))
DOWN = Element("down4", ("10.42.0.100",))


def session(**changes):
    s = new_session(mac=MAC, ip="10.42.0.100", kind="admin", plan="", now=NOW - 600, expires_at=NOW + 3000,
                    down=1, up=1)  # fmt: skip
    return replace(s, **changes)


def test_account_adds_what_grew_since_the_baseline():
    s = session(bytes_up=100, bytes_down=1000)
    usage, base = account(s, {UP: Present(s.sid, 60, 150, 5), DOWN: Present(s.sid, 60, 1300, 6)},
                          {"auth4|02:00:00:00:01:01 . 10.42.0.100": (120, 4), "down4|10.42.0.100": (1000, 3)},
                          NOW)  # fmt: skip
    assert (usage.bytes_up, usage.bytes_down, usage.last_active, usage.changed) == (130, 1300, NOW, True)
    assert base == {"auth4|02:00:00:00:01:01 . 10.42.0.100": (150, 5), "down4|10.42.0.100": (1300, 6)}


def test_account_counts_a_reset_counter_from_zero():
    s = session(bytes_up=500)
    seen = {"auth4|02:00:00:00:01:01 . 10.42.0.100": (900, 9)}
    usage, _ = account(s, {UP: Present(s.sid, 60, 40, 1)}, seen, NOW)
    assert usage.bytes_up == 540


def test_account_keeps_last_active_when_nothing_moved():
    s = session(last_active=NOW - 100)
    usage, _ = account(s, {UP: Present(s.sid, 60, 10, 1)}, {"auth4|02:00:00:00:01:01 . 10.42.0.100": (10, 1)},
                       NOW)  # fmt: skip
    assert usage.last_active == NOW - 100 and not usage.changed


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"expires_at": NOW}, "expired"),
        ({"quota": 1000, "bytes_up": 400, "bytes_down": 600}, "quota"),
        ({"last_active": NOW - 901, "started_at": NOW - 2000}, "idle"),
        ({"last_active": 0.0, "started_at": NOW - 901}, "idle"),
        ({"last_active": NOW - 899}, None),
        ({"quota": 1000, "bytes_up": 999}, None),
    ],
)
def test_plan_ends(changes, reason):
    s = session(**changes)
    ends = plan_ends([s], NOW, idle_timeout=900)
    assert ends == ([(s, reason)] if reason else [])


def test_neighbour_table_skips_junk():
    table = NeighbourTable.from_entries([("10.42.0.5", "00:00:00:00:00:00"), ("x", MAC), ("10.42.0.6", "zz")])
    assert table.mac_by_ip == {}


def test_doctor_reports_missing_and_extra_elements():
    s = session(sid="aaaa")
    view = KernelView(None)
    view.exists, view.fingerprint = True, "f1"
    view.elements = {
        UP: Present("aaaa", 3060, 0, 0),
        Element("auth4", (MAC, "10.42.0.9")): Present("old", 10),
    }
    report = diagnose([s], view, "f1", NOW)
    assert report["table"] == "ok" and not report["ok"]
    assert [row["set"] for row in report["missing"]] == ["down4"]
    assert report["extra"] == [{"set": "auth4", "element": f"{MAC} . 10.42.0.9", "sid": "old"}]
    assert diagnose([s], view, "f2", NOW)["table"] == "changed"
    assert diagnose([], KernelView(None), "f1", NOW)["table"] == "missing"


def test_doctor_reports_the_fail_closed_guard():
    view = KernelView(None)
    view.exists, view.fingerprint = True, "f1"
    assert diagnose([], view, "f1", NOW)["guard"] == "unknown" and diagnose([], view, "f1", NOW)["ok"]
    assert diagnose([], view, "f1", NOW, guard=True)["ok"]
    missing = diagnose([], view, "f1", NOW, guard=False)
    assert missing["guard"] == "missing" and not missing["ok"]
