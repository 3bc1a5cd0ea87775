"""A clock far off (no NTP after a power cut), on a real Redis with an injected clock: sessions keep
their time left and their real duration, vouchers their validity, and a restart moves nothing twice.

(The same with the real gateway under libfaketime is tests/lab/test_faults.py.)"""

from __future__ import annotations

import sys
import time

import pytest

from gateway import config as config_mod
from gateway.cli.access import NOT_SYNCHRONISED, gateway_warnings
from gateway.config import Plan
from gateway.daemon.clock import ClockWatch
from gateway.model import clock, keys
from gateway.model.sessions import end_session, get_session, new_session, start_session
from gateway.model.vouchers import get_voucher, issue_batch, redeem

REAL = time.time()  # the true time (Redis stamps the session records with it); reset per test
BOOT = 1_577_836_800.0  # 2020-01-01 00:00 UTC: what the router believes after the power cut
PLAN = Plan(name="harian", label={"id": "Harian"}, duration=7200, validity=30 * 86400, quota=None,
            down=4_000_000, up=2_000_000, weight=1.0, max_devices=1, multi_day=True)  # fmt: skip


class Clocks:
    """A wall clock the test sets, and a monotonic one that only moves forward."""

    def __init__(self, wall: float):
        self.now, self.mono = wall, 1000.0

    def wait(self, seconds: float) -> None:
        self.now += seconds
        self.mono += seconds

    def watch(self, r, synchronised: bool = False) -> ClockWatch:
        """The gateway's watch on this clock; the kernel says NTP has not synchronised it (yet)."""
        return ClockWatch(r, slack=10, wall=lambda: self.now, mono=lambda: self.mono,
                          synchronised=lambda: synchronised)  # fmt: skip


def a_session(i: int, now: float, minutes: float = 120):
    return new_session(
        mac=f"02:00:00:00:09:{i:02x}", ip=f"10.42.0.{150 + i}", kind="admin", plan="harian",
        now=now, expires_at=now + minutes * 60, down=1_000_000, up=500_000,
    )  # fmt: skip


@pytest.fixture(autouse=True)
def built_long_ago(monkeypatch):
    # REAL is the true time when each test starts: Redis stamps the records it writes with
    # the true time, which must not run far ahead of REAL (the suite can take many minutes)
    real = time.time()
    monkeypatch.setattr(sys.modules[__name__], "REAL", real)
    monkeypatch.setattr(clock, "build_time", lambda: real - 30 * 86400)


def test_ntp_jumping_forward_keeps_time_left_durations_and_vouchers(r):
    clocks = Clocks(BOOT)
    watch = clocks.watch(r)
    assert watch.check() is None
    assert "earlier than this program's build" in watch.state()["problem"]
    [voucher] = issue_batch(r, PLAN, 1, now=clocks.now, issued_by="desk")
    [unused] = issue_batch(r, PLAN, 1, now=clocks.now, issued_by="desk")
    clocks.wait(60)
    online = redeem(r, voucher.code, mac="02:00:00:00:09:01", ip="10.42.0.151", plans={"harian": PLAN},
                    now=clocks.now)  # fmt: skip
    admin = start_session(r, a_session(2, clocks.now, minutes=60), clocks.now)
    clocks.wait(30 * 60)
    watch.check()
    clocks.now += REAL - clocks.now  # NTP answers: the clock jumps years ahead
    jump = watch.check()
    assert jump == pytest.approx(REAL - (BOOT + 31 * 60))
    for before in (online, admin):
        after = get_session(r, before.sid)
        assert after.seconds_left(clocks.now) == pytest.approx(before.seconds_left(BOOT + 31 * 60), abs=0.01)
        assert clocks.now - after.started_at == pytest.approx(30 * 60, abs=0.01), "elapsed time kept"
    ended = end_session(r, admin.sid, "logout", clocks.now)
    assert ended.record("end")["duration"] == "1800.0", "the record says how long it really lasted"
    assert get_voucher(r, voucher.code).expires_at == pytest.approx(get_session(r, online.sid).expires_at)
    fresh = get_voucher(r, unused.code)
    assert fresh.valid_until - clocks.now == pytest.approx(PLAN.validity - 31 * 60, abs=0.01), "still valid"
    state = watch.state()
    assert state["ok"] and state["jumped"] == pytest.approx(jump, abs=0.1)
    assert watch.check() is None, "one jump is handled once"


def test_a_clock_behind_at_start_keeps_sessions_from_before_the_power_cut(r):
    before_cut = time.time() - 600
    session = start_session(r, a_session(1, before_cut, minutes=60), before_cut)  # 50 minutes left at the cut
    cut = clock.last_record_time(r)  # the last record (Redis's clock): when the power went
    clocks = Clocks(BOOT)  # the router comes back in 2020
    watch = clocks.watch(r)
    watch.check()
    moved = get_session(r, session.sid)
    assert moved.seconds_left(clocks.now) == pytest.approx(50 * 60, abs=1), "not endless, not expired"
    state = watch.state()
    assert not state["ok"] and "earlier than the last session record" in state["problem"]
    # the gateway restarts while the clock is still wrong: nothing moves twice
    again = clocks.watch(r)
    again.check()
    assert get_session(r, session.sid).started_at == moved.started_at
    clocks.wait(20 * 60)
    again.check()
    clocks.now = cut + 3600  # NTP: an hour after the cut (the router was off 40 minutes)
    again.check()
    after = get_session(r, session.sid)
    assert after.seconds_left(clocks.now) == pytest.approx(30 * 60, abs=1)
    assert again.state()["ok"], "plausible again"
    ended = end_session(r, session.sid, "logout", clocks.now)
    assert float(ended.record("end")["duration"]) == pytest.approx(30 * 60, abs=1), (
        "10 minutes before the cut, 20 after; not the hours the router was off, not years"
    )


def test_ntp_jumping_back_from_a_clock_ahead(r):
    ahead = REAL + 365 * 86400
    clocks = Clocks(ahead)
    watch = clocks.watch(r)
    watch.check()
    [voucher] = issue_batch(r, PLAN, 1, now=clocks.now, issued_by="desk")
    session = start_session(r, a_session(1, clocks.now), clocks.now)
    clocks.wait(600)
    watch.check()
    clocks.now = REAL
    watch.check()
    after = get_session(r, session.sid)
    assert after.seconds_left(clocks.now) == pytest.approx(110 * 60, abs=1), "not endless"
    assert get_voucher(r, voucher.code).valid_until - REAL == pytest.approx(PLAN.validity - 600, abs=1)
    # the records written while ahead are later than now: that is known, not a wrong clock now
    assert watch.state()["ok"] and watch.state()["jumped"] < 0


def test_status_warns_of_the_clock_and_the_session_log():
    from tests.unit.test_portal_plumbing import ROOT

    config = config_mod.loads(
        (ROOT / "docs" / "hotspot.example.toml").read_text(), "/etc/hotspot/hotspot.toml"
    )
    assert gateway_warnings({}, config) == []
    assert gateway_warnings({"clock": {"ok": True, "synchronised": True}}, config) == []
    info = {
        "clock": {"ok": False, "synchronised": False, "problem": "the clock (2020-01-01T00:00:00+00:00) is "
                  "earlier than the last session record", "jumped": 218_000_000.0, "jumped_at": REAL},
        "session_log": {"ok": False, "waiting": 3, "error": "[Errno 28] No space left on device"},
    }  # fmt: skip
    messages = [(w["what"], w["message"]) for w in gateway_warnings(info, config)]
    assert [what for what, _ in messages] == ["session log", "clock", "clock", "clock"]
    assert "No space left on device" in messages[0][1] and "3 records wait in Redis" in messages[0][1]
    assert messages[1][1].startswith(NOT_SYNCHRONISED)
    assert "earlier than the last session record" in messages[2][1]
    assert "jumped by" in messages[3][1] and "forward" in messages[3][1]


def test_deleting_old_data_never_counts_from_a_clock_ahead_of_the_records(r):
    ahead = time.time() + 365 * 86400
    assert clock.not_after_records(r, ahead) == ahead  # nothing recorded: nothing to compare with
    start_session(r, a_session(1, time.time()), time.time())
    last = clock.last_record_time(r)
    assert clock.not_after_records(r, ahead) == pytest.approx(last + 86400)
    assert clock.not_after_records(r, last + 60) == last + 60


def test_records_from_a_clock_that_was_ahead_do_not_make_a_synchronised_clock_look_wrong(r):
    """After a year ahead and NTP, Redis's stream ids stay ahead (they never go back): once NTP
    keeps the clock synchronised, a restarted gateway neither warns nor moves anything."""
    now = time.time()
    session = start_session(r, a_session(1, now), now)
    r.xadd(keys.EVENTS, {"event": "start", "sid": "ahead"}, id=f"{int((now + 365 * 86400) * 1000)}-0")
    clocks = Clocks(now)
    unsure = clocks.watch(r)
    unsure.check()
    assert "earlier than the last session record" in unsure.state()["problem"]
    stored = get_session(r, session.sid)
    synced = clocks.watch(r, synchronised=True)
    synced.check()
    assert synced.state()["ok"] and get_session(r, session.sid) == stored


def test_the_kernels_ntp_state_can_be_overridden(monkeypatch):
    from gateway.daemon.clock import kernel_synchronised  # deliberate: next to the one test of it

    monkeypatch.setenv("HOTSPOT_CLOCK_SYNCHRONISED", "0")
    assert kernel_synchronised() is False
    monkeypatch.setenv("HOTSPOT_CLOCK_SYNCHRONISED", "1")
    assert kernel_synchronised() is True
    monkeypatch.delenv("HOTSPOT_CLOCK_SYNCHRONISED")
    assert kernel_synchronised() in (True, False, None)  # adjtimex(2), read only
