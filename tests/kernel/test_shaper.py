"""The shaping component with real Redis and a real kernel: slots, restarts, fast paths, rates."""

from __future__ import annotations

import time

import pytest

from gateway.model import keys
from gateway.model.sessions import end_session, get_session, new_session, online_sessions, start_session
from gateway.shaping.model import client_class
from gateway.shaping.rates import read_rates
from gateway.shaping.shaper import Shaper

pytestmark = pytest.mark.lab

NOW = 1_700_000_000.0


def _login(r, n: int, down: int = 4_000_000, up: int = 2_000_000, **kw):
    s = new_session(
        mac=f"02:00:00:00:01:{n:02x}", ip=f"10.42.0.{99 + n}", kind="voucher", plan="harian", now=NOW,
        expires_at=NOW + 7200, down=down, up=up, **kw,
    )  # fmt: skip
    return start_session(r, s, NOW)


@pytest.fixture
def shaper(router_config, r):
    s = Shaper(router_config, r)
    yield s
    s.close()


def _classes(shaper) -> set[int]:
    return set(shaper.applier.read("lan0").classes)


def _quiet(counts: dict) -> bool:
    return counts["added"] == counts["changed"] == counts["removed"] == 0


def test_slots_are_given_kept_and_not_inherited(shaper, router_config, r):
    sessions = [_login(r, n) for n in (1, 2, 3)]
    counts = shaper.reconcile(online_sessions(r), NOW)
    assert counts["added"] > 0
    slots = {s.sid: get_session(r, s.sid).slot for s in sessions}
    assert sorted(slots.values()) == [1, 2, 3]
    assert {client_class(n) for n in (1, 2, 3)} <= _classes(shaper)
    assert _quiet(shaper.reconcile(online_sessions(r), NOW + 1))

    # a restarted gateway finds everything in place
    again = Shaper(router_config, r)
    try:
        assert _quiet(again.reconcile(online_sessions(r), NOW + 2))
    finally:
        again.close()

    # slot 1 frees up and a newcomer arrives before the next pass: the class of slot 1 is
    # still in the kernel, with the old session's counters, so the newcomer gets a fresh one
    first = min(slots, key=slots.get)
    end_session(r, first, "kicked", NOW + 3)
    newcomer = _login(r, 4)
    shaper.reconcile(online_sessions(r), NOW + 3)
    assert get_session(r, newcomer.sid).slot == 4
    assert client_class(1) not in _classes(shaper)
    later = _login(r, 5)
    shaper.reconcile(online_sessions(r), NOW + 4)
    assert get_session(r, later.sid).slot == 1


def test_fast_paths_act_at_once_and_the_pass_finishes(shaper, r):
    for n in (1, 2):  # caps above half the line: the share is what limits them
        _login(r, n, down=10_000_000)
    shaper.reconcile(online_sessions(r), NOW)
    share_of_two = shaper.applier.read("lan0").classes[client_class(1)].rate

    # login: the phone's classes are there at once (the others keep their halves until the
    # reply has gone), then everyone has a third of the line
    phone = _login(r, 3, down=10_000_000)
    shaper.login(get_session(r, phone.sid), NOW + 1)
    assert get_session(r, phone.sid).slot == 3
    first = shaper.applier.read("lan0").classes
    assert client_class(3) in first and first[client_class(1)].rate == share_of_two
    shaper.settle()
    thirds = shaper.applier.read("lan0").classes
    assert thirds[client_class(3)].rate == thirds[client_class(1)].rate < share_of_two
    assert thirds[client_class(3)].ceil == 9_500_000
    # the pass finds nothing left to do
    assert _quiet(shaper.reconcile(online_sessions(r), NOW + 2))

    # the same phone logs in again (a new voucher): its old session's objects go, the new come
    again = _login(r, 3, down=10_000_000)
    assert get_session(r, phone.sid).end_reason == "replaced"
    shaper.login(get_session(r, again.sid), NOW + 4)
    shaper.settle()
    slot = get_session(r, again.sid).slot
    classes = shaper.applier.read("lan0").classes
    assert client_class(slot) in classes and (slot == 3 or client_class(3) not in classes)
    assert _quiet(shaper.reconcile(online_sessions(r), NOW + 5))

    # logout: gone at once, and the two left have half the line each again
    gone = get_session(r, again.sid)
    end_session(r, gone.sid, "logout", NOW + 6)
    shaper.logout(gone, NOW + 6)
    halves = shaper.applier.read("lan0").classes
    assert client_class(gone.slot) not in halves and halves[client_class(1)].rate == share_of_two
    assert _quiet(shaper.reconcile(online_sessions(r), NOW + 7))


def test_current_rates_go_to_redis(shaper, send_udp, r):
    busy, idle = _login(r, 1), _login(r, 2)
    shaper.reconcile(online_sessions(r), NOW)
    shaper.reconcile(online_sessions(r), NOW + 2)
    send_udp(busy.ip, count=5, mac=busy.mac)
    time.sleep(0.2)  # the class sends at its rate
    shaper.reconcile(online_sessions(r), NOW + 4)
    found = read_rates(r, [busy.sid, idle.sid])
    assert found[busy.sid] == (5 * 1042 * 8 / 2, 0.0, NOW + 4)
    assert found[idle.sid] == (0.0, 0.0, NOW + 4)
    assert r.hget(keys.session(busy.sid), "rate_down") == str(5 * 1042 * 4)


def test_with_many_online_a_login_touches_only_its_own_classes(shaper, r):
    from gateway.shaping.shaper import EXACT_UP_TO

    crowd = EXACT_UP_TO + 5
    for n in range(1, crowd + 1):
        _login(r, n, down=10_000_000)
    shaper.reconcile(online_sessions(r), NOW)
    before = shaper.applier.read("lan0").classes
    newcomer = _login(r, crowd + 1, down=10_000_000)
    shaper.login(get_session(r, newcomer.sid), NOW + 1)
    after = shaper.applier.read("lan0").classes
    slot = get_session(r, newcomer.sid).slot
    assert {h for h in after if h not in before} == {client_class(slot)}
    assert all(after[h] == c for h, c in before.items()), "nobody else's class changed"
    # its share is the one a full plan gives it, so the pass has nothing to do
    assert _quiet(shaper.reconcile(online_sessions(r), NOW + 2))
    # and out again
    gone = get_session(r, newcomer.sid)
    end_session(r, gone.sid, "logout", NOW + 3)
    shaper.logout(gone, NOW + 3)
    assert shaper.applier.read("lan0").classes == before
