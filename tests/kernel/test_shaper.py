"""The shaping step with real Redis and a real kernel: slots, restarts, accounting, quota."""

from __future__ import annotations

import time

import pytest

from gateway import keys
from gateway.sessions import end_session, get_session, new_session, online_sessions, start_session
from gateway.shaping import Shaper
from gateway.tc_model import client_class

pytestmark = pytest.mark.lab

NOW = 1_700_000_000.0


def _login(r, n: int, quota: int | None = None):
    s = new_session(
        mac=f"02:00:00:00:01:{n:02x}", ip=f"10.42.0.{99 + n}", kind="voucher", plan="harian", now=NOW,
        expires_at=NOW + 7200, down=4_000_000, up=2_000_000, quota=quota,
    )  # fmt: skip
    return start_session(r, s, NOW)


@pytest.fixture
def shaper(router_config, r):
    s = Shaper(router_config, r)
    yield s
    s.close()


def _classes(shaper) -> set[int]:
    return set(shaper.applier.read("lan0").classes)


def test_slots_are_given_kept_and_not_inherited(shaper, router_config, r):
    sessions = [_login(r, n) for n in (1, 2, 3)]
    done = shaper.reconcile(online_sessions(r), NOW)
    assert done.slots_assigned == 3 and done.result.added > 0
    slots = {s.sid: get_session(r, s.sid).slot for s in sessions}
    assert sorted(slots.values()) == [1, 2, 3]
    assert {client_class(n) for n in (1, 2, 3)} <= _classes(shaper)
    assert shaper.reconcile(online_sessions(r), NOW + 1).result.unchanged

    # a restarted gateway finds everything in place
    again = Shaper(router_config, r)
    try:
        assert again.reconcile(online_sessions(r), NOW + 2).result.unchanged
    finally:
        again.close()

    # slot 1 frees up, a newcomer arrives in the same pass: the class of slot 1 is still
    # in the kernel with the old session's counters, so the newcomer gets a fresh one
    first = min(slots, key=slots.get)
    end_session(r, first, "kicked", NOW + 3)
    newcomer = _login(r, 4)
    shaper.reconcile(online_sessions(r), NOW + 3)
    assert get_session(r, newcomer.sid).slot == 4
    assert client_class(1) not in _classes(shaper)
    later = _login(r, 5)
    shaper.reconcile(online_sessions(r), NOW + 4)
    assert get_session(r, later.sid).slot == 1


def test_bytes_rates_and_quota(shaper, send_udp, r):
    interval = shaper.config.gateway.accounting_interval
    plain = _login(r, 1)
    capped = _login(r, 2, quota=4000)
    shaper.reconcile(online_sessions(r), NOW)
    send_udp("10.42.0.100", count=3)
    send_udp("10.42.0.101", count=5)
    time.sleep(0.2)  # the classes send at their rates
    done = shaper.reconcile(online_sessions(r), NOW + interval)
    assert done.accounted == 2
    assert done.quota_ended == (capped.sid,)

    s = get_session(r, plain.sid)
    assert (s.bytes_down, s.bytes_up) == (3 * 1042, 0)
    assert float(r.hget(keys.session(plain.sid), "rate_down")) == pytest.approx(3 * 1042 * 8 / interval)
    ended = get_session(r, capped.sid)
    assert (ended.state, ended.end_reason, ended.bytes_down) == ("ended", "quota", 5 * 1042)
    record = r.xrevrange(keys.EVENTS, count=1)[0][1]
    assert (record["event"], record["reason"], record["bytes_down"]) == ("end", "quota", str(5 * 1042))
    # its class went in the same pass
    assert client_class(ended.slot) not in _classes(shaper)
    assert client_class(s.slot) in _classes(shaper)

    # accounting again without traffic adds nothing; a restart does not count twice
    shaper.reconcile(online_sessions(r), NOW + 2 * interval)
    assert get_session(r, plain.sid).bytes_down == 3 * 1042
    again = Shaper(shaper.config, r)
    try:
        again.reconcile(online_sessions(r), NOW + 3 * interval)
    finally:
        again.close()
    assert get_session(r, plain.sid).bytes_down == 3 * 1042
    assert r.hget(keys.session(plain.sid), "rate_down") == "0"
