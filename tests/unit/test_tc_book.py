"""The share book without a kernel or Redis: slots, rates, and the tc objects of each fast path.

Each fast path's objects are checked against what a full plan (:func:`plan_tc`) gives the
same sessions: what the book sends is what the next pass would want, so it finds nothing
to do.
"""

from __future__ import annotations

import ipaddress
import random
import subprocess
import sys
from dataclasses import dataclass, replace

import pytest

from gateway.shaping.book import EXACT_UP_TO, Entry, ShareBook
from gateway.shaping.diff import RATE_TOLERANCE
from gateway.shaping.model import (
    MAX_SLOT,
    ROOT_QDISC,
    UNAUTH_CLASS,
    UPLINK_CLASS,
    TcChange,
    TcClass,
    TcFilter,
    TcLeaf,
    TcPlan,
    client_class,
    slot_of_class,
)
from gateway.shaping.plan import ShapingSettings, plan_tc
from gateway.shaping.shares import MIN_CLIENT_RATE

MBIT = 1_000_000
NOW = 1_700_000_000.0
SETTINGS = ShapingSettings(
    lan_interface="lan0",
    ifb_interface="ifb-lan0",
    router_ip=ipaddress.IPv4Address("10.42.0.1"),
    lan_network=ipaddress.IPv4Network("10.42.0.0/16"),
    uplink_down=10 * MBIT,
    uplink_up=5 * MBIT,
    headroom=0.95,
)


@dataclass(frozen=True)
class Sess:
    """A session as the book sees it (the real one is gateway.model.sessions.Session)."""

    sid: str
    mac: str
    ip: str
    slot: int = 0
    down: int = 10 * MBIT
    up: int = 4 * MBIT
    weight: float = 1.0
    kind: str = "paid"  # "free": its class sits under the free class (with a free plan)


def phone(n: int, **kw) -> Sess:
    return Sess(f"s{n}", f"02:00:00:00:{n >> 8:02x}:{n & 0xFF:02x}", f"10.42.{n >> 8}.{n & 0xFF}", **kw)


def booked(sessions: list[Sess], counters: dict | None = None) -> tuple[ShareBook, list[Sess]]:
    """Return a book after one pass over ``sessions`` (applied), and the sessions with their slots."""
    book = ShareBook(SETTINGS)
    step = book.begin_pass(sessions, counters or {}, NOW)
    book.end_pass(step)
    return book, list(step.sessions)


def objects(plan: TcPlan, slot: int) -> dict[str, set]:
    """Return the class, leaf and filters ``plan`` has for ``slot``, by device."""
    handle = client_class(slot)
    out = {}
    for tree in (plan.down, plan.up):
        out[tree.device] = (
            {c for c in tree.classes if c.handle == handle}
            | {leaf for leaf in tree.leaves if leaf.parent == handle}
            | {f for f in tree.filters if f.target == handle}
        )
    return out


def sent(entry: Entry, op: str = "replace") -> dict[str, set]:
    """Return the objects ``entry`` sends in all (before and after the reply), by device."""
    out: dict[str, set] = {"lan0": set(), "ifb-lan0": set()}
    for change in (*entry.changes, *entry.later):
        if change.op == op and not (change.item in out[change.device] and isinstance(change.item, TcFilter)):
            out[change.device].add(change.item)
    return out


def classes(entry: Entry, op: str = "replace") -> dict[int, TcClass]:
    """Return the download client classes ``entry`` leaves in the kernel (the last version of each)."""
    return {c.item.handle: c.item for c in (*entry.changes, *entry.later)
            if c.op == op and c.device == "lan0" and isinstance(c.item, TcClass)
            and slot_of_class(c.item.handle)}  # fmt: skip


def size(entry: Entry) -> int:
    """Return how many objects ``entry`` sends in all."""
    return len(entry.changes) + len(entry.later)


# -- the pass -----------------------------------------------------------------------------


def test_a_pass_gives_slots_keeps_them_and_never_reuses_a_class_in_the_kernel():
    book = ShareBook(SETTINGS)
    step = book.begin_pass([phone(1), phone(2), phone(3, slot=7)], {}, NOW)
    assert step.slots == {"s1": 1, "s2": 2}  # s3 keeps its own
    assert [s.slot for s in step.sessions] == [1, 2, 7]
    assert step.plan == plan_tc(SETTINGS, step.sessions)
    book.end_pass(step)
    assert book.kernel_slots == {1, 2, 7}

    # slot 1's class is still in the kernel (its session just ended): a newcomer skips it
    again = book.begin_pass([*step.sessions[1:], phone(4)], {1: (10, 10), 2: (0, 0), 7: (0, 0)}, NOW + 5)
    assert again.slots == {"s4": 3}
    # a session away from the LAN gets no slot and no class
    away = book.begin_pass([Sess("x", "02:00:00:00:09:09", "192.0.2.9")], {}, NOW + 6)
    assert away.slots == {} and len(away.plan.down.classes) == 3  # uplink, unauthorized, local


def test_rates_from_counters_are_recorded_when_they_move():
    book, online = booked([phone(1), phone(2)])
    # the first sample of a slot gives no rate
    first = book.begin_pass(online, {1: (1000, 500), 2: (0, 0)}, NOW)
    assert first.rates == {}
    book.end_pass(first)
    later = book.begin_pass(online, {1: (1000 + 250_000, 500), 2: (0, 0)}, NOW + 2)
    assert later.rates == {"s1": (1_000_000.0, 0.0), "s2": (0.0, 0.0)}
    book.end_pass(later)
    # the same rates again: nothing worth writing
    steady = book.begin_pass(online, {1: (1000 + 500_000, 500), 2: (0, 0)}, NOW + 4)
    assert steady.rates == {}


def test_every_slot_taken_the_newest_get_none_and_no_class():
    crowd = [phone(n) for n in range(1, MAX_SLOT + 2)]
    book = ShareBook(SETTINGS)
    step = book.begin_pass(crowd, {}, NOW)
    assert step.sessions[-1].slot == 0 and "s4096" not in step.slots
    assert len(step.plan.down.classes) == 3 + MAX_SLOT
    book.end_pass(step)
    # a login while the router is full: no slot, nothing sent, the default class carries it
    assert book.login(phone(5000)) == Entry()
    # once one logs out, its slot is free again for the next login
    gone = book.logout(step.sessions[9])
    assert classes(gone, "del") == {client_class(10): classes(gone, "del")[client_class(10)]}
    entry = book.login(phone(5000))
    assert entry.slots == {"s5000": 10}


# -- fast paths ---------------------------------------------------------------------------


def test_nothing_before_the_first_pass():
    book = ShareBook(SETTINGS)
    assert book.login(phone(1)) == Entry()
    assert book.logout(phone(1)) == Entry()


def test_login_with_few_online_sends_the_newcomer_and_the_moved_shares():
    book, online = booked([phone(1), phone(2)])
    entry = book.login(phone(3))
    assert entry.slots == {"s3": 3}
    everyone = [*online, phone(3, slot=3)]
    full = plan_tc(SETTINGS, everyone)
    news = sent(entry)
    for device, wanted in objects(full, 3).items():
        assert wanted <= news[device]  # class, leaf, IPv4 and IPv6 filter on each device
        assert len(wanted) == 4
    # the others' guarantees fell from a half to a third: their classes go too, as planned
    assert {h: c.rate for h, c in classes(entry).items()} == {
        c.handle: c.rate for c in full.down.classes if c.handle in {client_class(n) for n in (1, 2, 3)}
    }
    # ... but not their filters, which did not change
    assert not any(isinstance(c.item, TcFilter) and c.item.target != client_class(3) for c in entry.changes)
    # the book now knows all three: the same login again sends nothing new for the others
    assert set(classes(book.login(phone(3, slot=3)))) == {client_class(3)}


def test_login_with_many_online_sends_only_its_own_objects_at_its_planned_share():
    book, online = booked([phone(n) for n in range(1, EXACT_UP_TO + 6)])
    newcomer = phone(200)
    entry = book.login(newcomer)
    slot = entry.slots[newcomer.sid]
    assert slot == EXACT_UP_TO + 6
    full = plan_tc(SETTINGS, [*online, phone(200, slot=slot)])
    assert sent(entry) == objects(full, slot)
    # classes and leaves before the filters that point to them, download first
    kinds = [(c.device, type(c.item)) for c in entry.changes]
    assert kinds == [(d, k) for d in ("lan0", "ifb-lan0") for k in (TcClass, TcLeaf, TcFilter, TcFilter)]


def test_logout_sends_filters_then_class_and_gives_the_share_back():
    book, online = booked([phone(1), phone(2), phone(3)])
    entry = book.logout(online[2])
    deletes = [c for c in entry.changes if c.op == "del"]
    assert [(c.device, type(c.item)) for c in deletes] == [
        (d, k) for d in ("lan0", "ifb-lan0") for k in (TcFilter, TcFilter, TcClass)
    ]
    assert {c.item.handle for c in deletes if isinstance(c.item, TcClass)} == {client_class(3)}
    halves = plan_tc(SETTINGS, online[:2])
    assert {h: c.rate for h, c in classes(entry).items()} == {
        c.handle: c.rate for c in halves.down.classes if c.handle in {client_class(1), client_class(2)}
    }
    assert book.kernel_slots == {1, 2}
    # logging out again, or someone the book never saw, sends nothing more than deletes
    assert book.logout(phone(9, slot=0)) == Entry()


def test_logout_with_many_online_touches_only_its_own_classes():
    book, online = booked([phone(n) for n in range(1, EXACT_UP_TO + 6)])
    entry = book.logout(online[0])
    assert {c.item.handle for c in entry.changes if isinstance(c.item, TcClass)} == {client_class(1)}
    assert all(c.op == "del" for c in entry.changes)
    assert 1 not in book.kernel_slots
    # and its slot is given to the next login
    assert book.login(phone(300)).slots == {"s300": 1}


def test_a_device_logging_in_again_replaces_its_old_session_in_the_same_entry():
    book, online = booked([phone(1), phone(2)])
    old = online[1]
    again = Sess("s2-new", old.mac, old.ip)
    entry = book.login(again)
    first_delete = next(i for i, c in enumerate(entry.changes) if c.op == "del")
    first_put = next(i for i, c in enumerate(entry.changes) if c.op == "replace")
    assert first_delete < first_put  # the old classes go before the new come
    assert entry.slots == {"s2-new": 2}  # the old class went in this entry: its slot is free again
    assert set(book.sessions) == {"s1", "s2-new"}


def final(entries: list[Entry]) -> dict[tuple[str, str, object], object]:
    """Return what the kernel ends up with after ``entries`` are sent in order: object -> item or None."""
    out: dict[tuple[str, str, object], object] = {}
    for entry in entries:
        for change in (*entry.changes, *entry.later):  # the urgent part, then the rest after the reply
            item = change.item
            key = (change.device, type(item).__name__, getattr(item, "handle", None) or item)
            out[key] = item if change.op == "replace" else None
    return out


def test_a_batch_of_logins_ends_where_the_same_logins_in_a_row_end_with_fewer_objects():
    newcomers = [phone(n) for n in range(3, 23)]
    in_a_row, _ = booked([phone(1), phone(2)])
    one_by_one = [in_a_row.login(s) for s in newcomers]
    together, online = booked([phone(1), phone(2)])
    batch = together.login_many(newcomers)
    assert batch.slots == {s.sid: n for s, n in zip(newcomers, range(3, 23), strict=True)}
    assert final([batch]) == final(one_by_one)  # the same objects, at the same rates
    assert together.rates == in_a_row.rates and together.kernel_slots == set(range(1, 23))
    # everyone at the share a full plan gives 22 clients, each newcomer's filters sent once
    everyone = [*online, *(phone(n, slot=n) for n in range(3, 23))]
    full = plan_tc(SETTINGS, everyone)
    assert {h: c.rate for h, c in classes(batch).items()} == {
        c.handle: c.rate for c in full.down.classes if c.handle in {client_class(n) for n in range(1, 23)}
    }
    for n in range(3, 23):
        for device, wanted in objects(full, n).items():
            assert wanted <= sent(batch)[device]
    # one split instead of twenty: each class once, not once per later newcomer
    assert size(batch) < sum(size(e) for e in one_by_one) / 4
    assert len(classes(batch)) == 22


def test_a_batch_keeps_the_last_login_of_a_device_and_skips_who_gets_no_class():
    book, _ = booked([phone(1)])
    first, again = phone(2), Sess("s2-again", phone(2).mac, "10.42.0.99")
    away = Sess("x", "02:00:00:00:09:09", "192.0.2.9")
    entry = book.login_many([first, away, phone(3), again, phone(3)])
    assert set(book.sessions) == {"s1", "s3", "s2-again"}
    handles = set(classes(entry))
    assert handles == {client_class(1), client_class(book.sessions["s3"].slot),
                       client_class(book.sessions["s2-again"].slot)}  # fmt: skip
    slots = [book.sessions[sid].slot for sid in ("s1", "s3", "s2-again")]
    assert len(set(slots)) == 3
    # nothing before the first pass, and an empty batch sends nothing
    assert ShareBook(SETTINGS).login_many([phone(1), phone(2)]) == Entry()
    assert book.login_many([]) == Entry()


def test_a_batch_with_many_online_is_the_logins_in_a_row():
    crowd = [phone(n) for n in range(1, EXACT_UP_TO + 6)]
    newcomers = [phone(n) for n in range(300, 304)]
    in_a_row, _ = booked(crowd)
    together, _ = booked(crowd)
    expected = [in_a_row.login(s) for s in newcomers]
    batch = together.login_many(newcomers)
    assert batch.changes == tuple(c for e in expected for c in e.changes)
    assert batch.slots == {sid: slot for e in expected for sid, slot in e.slots.items()}


def test_a_batch_crossing_the_exact_limit_splits_once_then_goes_in_constant_time():
    # a second class logging in while the first is online: 40 online, 30 newcomers
    crowd = [phone(n) for n in range(1, 41)]
    newcomers = [phone(n) for n in range(300, 330)]
    in_a_row, _ = booked(crowd)
    together, _ = booked(crowd)
    one_by_one = [in_a_row.login(s) for s in newcomers]
    batch = together.login_many(newcomers)
    assert final([batch]) == final(one_by_one)  # the same objects, at the same rates
    assert together.rates == in_a_row.rates and set(together.sessions) == set(in_a_row.sessions)
    assert batch.slots == {sid: slot for e in one_by_one for sid, slot in e.slots.items()}
    # in a row, each of the first ten newcomers resends everyone's class
    assert size(batch) < sum(size(e) for e in one_by_one) / 3


# -- before the reply, and after it -----------------------------------------------------------


Kernel = dict[tuple[str, str, object], object]


def kernel_of(plan: TcPlan) -> Kernel:
    """Return the kernel once ``plan`` is applied, keyed as :func:`final` keys it."""
    return final([Entry(tuple(TcChange("replace", tree.device, item) for tree in (plan.down, plan.up)
                              for item in (*tree.classes, *tree.leaves, *tree.filters)))])  # fmt: skip


def overcommit(kernel: Kernel) -> int:
    """Return by how much the guarantees under the line exceed it on the worse device (<= 0: they fit).

    Counted: the not-logged-in classes, the free class and every client class (a free
    session's too, though it sits under the free class: the planner takes theirs from the
    same pool), against the uplink class 1:1.
    """
    worst = -(10**12)
    for device in ("lan0", "ifb-lan0"):
        line = kernel[(device, "TcClass", UPLINK_CLASS)].rate
        used = sum(item.rate for (d, kind, handle), item in kernel.items()
                   if d == device and isinstance(item, TcClass) and handle != UPLINK_CLASS
                   and item.parent != ROOT_QDISC)  # fmt: skip
        worst = max(worst, used - line)
    return worst


def send(kernel: Kernel, changes: tuple[TcChange, ...]) -> int:
    """Apply ``changes`` one object at a time; return the worst overcommit seen after any of them."""
    worst = -(10**12)
    for change in changes:
        kernel[
            (change.device, type(change.item).__name__, getattr(change.item, "handle", None) or change.item)
        ] = change.item if change.op == "replace" else None
        worst = max(worst, overcommit(kernel))
    return worst


def in_kernel(kernel: Kernel) -> Kernel:
    return {key: item for key, item in kernel.items() if item is not None}


def test_a_login_gets_its_own_classes_in_what_is_free_and_the_split_after_the_reply():
    # two phones uncapped share the whole line: nothing is free when the third comes
    book, online = booked([phone(1), phone(2)])
    kernel = kernel_of(plan_tc(SETTINGS, online))
    entry = book.login(phone(3))
    # before the reply: the newcomer's own class, leaf and both filters on each device...
    mine = [c for c in entry.changes if client_class(3) in (getattr(c.item, "handle", None),
            getattr(c.item, "parent", None), getattr(c.item, "target", None))]  # fmt: skip
    assert len(mine) == 8 and all(c.op == "replace" for c in entry.changes)
    # ... at a small guarantee lent by the not-logged-in class (the others keep theirs for now),
    # its ceil its cap as always so it can borrow
    newcomer = {
        c.device: c.item
        for c in entry.changes
        if isinstance(c.item, TcClass) and c.item.handle == client_class(3)
    }
    assert newcomer["lan0"].rate == newcomer["ifb-lan0"].rate == MIN_CLIENT_RATE
    full = plan_tc(SETTINGS, [*online, phone(3, slot=3)])
    assert newcomer["lan0"].ceil == next(c.ceil for c in full.down.classes if c.handle == client_class(3))
    unauth = [c.item for c in entry.changes if isinstance(c.item, TcClass) and c.item.handle == UNAUTH_CLASS]
    planned = {c.handle: c.rate for c in plan_tc(SETTINGS, online).down.classes}
    assert 0 < planned[UNAUTH_CLASS] - unauth[0].rate <= MIN_CLIENT_RATE  # (the split left a few bits free)
    assert not any(isinstance(c.item, TcClass) and c.item.handle in (client_class(1), client_class(2))
                   for c in entry.changes)  # fmt: skip
    assert send(kernel, entry.changes) <= 0
    # after the reply: the others shrink first, then the newcomer rises and 1:2 gets its share back
    later = [c for c in entry.later if isinstance(c.item, TcClass)]
    assert {c.item.handle for c in later[:4]} == {client_class(1), client_class(2)}
    assert not any(isinstance(c.item, TcFilter) for c in entry.later)
    assert send(kernel, entry.later) <= 0
    # and the kernel holds exactly what a pass over the three plans (as a login sent it before)
    assert in_kernel(kernel) == kernel_of(full)


def test_the_objects_for_after_the_reply_are_built_after_it(monkeypatch):
    # building the others' classes is most of a split's cost: it happens when `later` is read
    from gateway.shaping import book as book_module

    built = []
    real = book_module.client_objects
    monkeypatch.setattr(book_module, "client_objects", lambda *a: built.append(a[1].slot) or real(*a))
    book, _ = booked([phone(n) for n in range(1, 31)])
    entry = book.login(phone(31))
    assert built == [31]  # the newcomer's own objects, before the reply
    assert len(entry.later) > 4 * 30 and sorted(set(built)) == list(range(1, 32))
    built.clear()
    assert list(entry.later) == list(entry.later) and built == []  # built once


def test_a_login_with_its_share_free_gets_it_at_once_and_nothing_is_left_for_after():
    book, online = booked([])
    entry = book.login(phone(1))
    assert entry.later == ()
    assert sent(entry) == objects(plan_tc(SETTINGS, [phone(1, slot=1)]), 1)
    # others held at small caps leave most of the line free: the newcomer's share fits as it is
    book, online = booked([phone(n, down=MBIT, up=MBIT) for n in (1, 2)])
    kernel = kernel_of(plan_tc(SETTINGS, online))
    entry = book.login(phone(3))
    assert send(kernel, entry.changes) <= 0
    full = plan_tc(SETTINGS, [*online, phone(3, slot=3)])
    assert in_kernel(kernel) == kernel_of(full) and entry.later == ()


def test_a_batch_of_logins_fits_before_the_reply_and_ends_as_the_full_plan():
    book, online = booked([phone(1), phone(2)])
    kernel = kernel_of(plan_tc(SETTINGS, online))
    newcomers = [phone(n) for n in range(3, 23)]
    batch = book.login_many(newcomers)
    # before the reply: only the newcomers' own objects (and 1:2's loan), no other class
    handles = {c.item.handle for c in batch.changes if isinstance(c.item, TcClass)}
    assert handles == {UNAUTH_CLASS, *(client_class(n) for n in range(3, 23))}
    assert send(kernel, batch.changes) <= 0
    assert send(kernel, batch.later) <= 0
    everyone = [*online, *(phone(n, slot=n) for n in range(3, 23))]
    assert in_kernel(kernel) == kernel_of(plan_tc(SETTINGS, everyone))


def test_a_device_logging_in_again_fits_at_every_step():
    book, online = booked([phone(1), phone(2), phone(3)])
    kernel = kernel_of(plan_tc(SETTINGS, online))
    again = Sess("s2-new", online[1].mac, online[1].ip)
    entry = book.login(again)
    # the old session's filters and class go before the reply, before the new one's come
    assert [c.op for c in entry.changes][:6] == ["del"] * 6
    assert send(kernel, entry.changes) <= 0 and send(kernel, entry.later) <= 0
    assert in_kernel(kernel) == kernel_of(plan_tc(SETTINGS, [online[0], replace(again, slot=2), online[2]]))


def test_a_small_newcomer_still_shrinks_the_others_when_keeping_them_would_overcommit():
    # a 64 kbit/s newcomer moves the others' shares by less than the diff's tolerance;
    # their classes are sent all the same, or their guarantees and its own pass the line
    book, online = booked([phone(1), phone(2)])
    kernel = kernel_of(plan_tc(SETTINGS, online))
    entry = book.login(phone(3, down=1, up=1))
    assert send(kernel, entry.changes) <= 0 and send(kernel, entry.later) <= 0
    assert in_kernel(kernel) == kernel_of(plan_tc(SETTINGS, [*online, phone(3, slot=3, down=1, up=1)]))


@pytest.mark.parametrize("seed", range(40))
def test_guarantees_fit_the_line_after_every_object_of_any_login(seed):
    """Random crowds (caps, weights, free sessions), then logins, batches, logouts and devices
    logging in again: up to :data:`EXACT_UP_TO` online, no object sent overcommits the line."""
    rnd = random.Random(seed)
    settings = replace(SETTINGS, free_share=rnd.choice([0.0, 0.3]), uplink_down=rnd.choice([10, 100]) * MBIT)
    count = iter(range(1, 10_000))

    def someone() -> Sess:
        n = next(count)
        cap = rnd.choice([10 * MBIT, 2 * MBIT, 1, 0])
        return replace(phone(n, down=cap, up=rnd.choice([cap, MBIT]), weight=rnd.choice([1.0, 2.0, 0.5])),
                       kind=rnd.choice(["paid", "free"]))  # fmt: skip

    book = ShareBook(settings)
    step = book.begin_pass([someone() for _ in range(rnd.randint(0, 45))], {}, NOW)
    book.end_pass(step)
    kernel = kernel_of(step.plan)
    for _ in range(6):
        online = list(book.sessions.values())
        pick = rnd.random()
        if pick < 0.35:
            entry = book.login(someone())
        elif pick < 0.7:  # a batch, some of it devices logging in again
            batch = [someone() for _ in range(rnd.randint(2, 12))]
            batch += [
                Sess(o.sid + "-b", o.mac, o.ip)
                for o in rnd.sample(online, min(len(online), rnd.randint(0, 2)))
            ]
            entry = book.login_many(rnd.sample(batch, len(batch)))
        elif online and pick < 0.85:
            old = rnd.choice(online)
            entry = book.login(Sess(old.sid + "-again", old.mac, old.ip))
        elif online:
            entry = book.logout(rnd.choice(online))
            assert entry.later == ()
        else:
            continue
        fits = len(book.shapes) <= EXACT_UP_TO
        assert send(kernel, entry.changes) <= 0 or not fits
        assert send(kernel, entry.later) <= 0 or not fits
        # every session the book knows has its class in the kernel, and no other client has one
        slots = {slot_of_class(h) for (_d, kind, h) in in_kernel(kernel) if kind == "TcClass"} - {None}
        assert slots == {c.slot for c in book.shapes.values()}
    if len(book.shapes) <= EXACT_UP_TO:  # every class as a full plan has it (its rate within the tolerance)
        full = plan_tc(settings, list(book.sessions.values()))
        for tree in (full.down, full.up):
            have = {
                h: item
                for (d, kind, h), item in in_kernel(kernel).items()
                if d == tree.device and kind == "TcClass"
            }
            assert set(have) == {c.handle for c in tree.classes}
            for want in tree.classes:
                assert replace(have[want.handle], rate=want.rate, burst=want.burst) == want
                assert abs(have[want.handle].rate - want.rate) <= want.rate * RATE_TOLERANCE


def test_no_class_for_an_address_off_the_lan():
    book, _ = booked([phone(1)])
    assert book.login(Sess("x", "02:00:00:00:09:09", "192.0.2.9")) == Entry()
    assert book.login(Sess("y", "02:00:00:00:09:0a", "fe80::1")) == Entry()


def test_changes_are_plain_records():
    book, _ = booked([phone(1)])
    entry = book.login(phone(2))
    assert all(isinstance(c, TcChange) and c.op in ("replace", "del") for c in entry.changes)


@pytest.mark.parametrize("module", ["book", "plan", "diff", "shares", "model"])
def test_the_planners_load_no_kernel_or_redis_library(module):
    code = (
        f"import sys, gateway.shaping.{module}\n"
        "bad = sorted(m for m in ('redis', 'pyroute2', 'subprocess', 'nftables') if m in sys.modules)\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == ""
