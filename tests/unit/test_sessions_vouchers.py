"""The session and voucher model on a real Redis: atomic start/end, redeem rules."""

from __future__ import annotations

import pytest

from gateway.config import Plan
from gateway.model import keys
from gateway.model.sessions import (
    add_late_usage,
    end_session,
    get_session,
    new_session,
    normalize_mac,
    online_sessions,
    start_session,
)
from gateway.model.vouchers import (
    ALPHABET,
    VoucherDeviceLimit,
    VoucherExpired,
    VoucherNotFound,
    format_code,
    issue_batch,
    normalize_code,
    redeem,
)

NOW = 1_800_000_000.0  # 2027-01-15 08:00 UTC (15:00 WIB)
PLAN = Plan(name="harian", label={"id": "Harian"}, duration=7200, validity=30 * 86400, quota=None,
            down=4_000_000, up=2_000_000, weight=1.0, max_devices=1, multi_day=False)  # fmt: skip
PLANS = {"harian": PLAN}


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("abcd-efgh", "ABCDEFGH"),
        (" AbCd EfGh ", "ABCDEFGH"),
        ("o0il-1234", "00111234"),
        ("ab.cd_ef", "ABCDEF"),
    ],
)
def test_normalize_code(typed, code):
    assert normalize_code(typed) == code


def test_alphabet_has_no_look_alikes():
    assert len(ALPHABET) == 32 and not set("ILOU") & set(ALPHABET)
    assert format_code("ABCDEFGH") == "ABCD-EFGH"


def test_normalize_mac():
    assert normalize_mac("02-00-00-00-01-0A") == "02:00:00:00:01:0a"
    with pytest.raises(ValueError):
        normalize_mac("02:00:00:00:01")


def test_session_start_and_end_are_recorded(r):
    s = new_session(mac="02:00:00:00:01:01", ip="10.42.0.100", kind="admin", plan="harian",
                    now=NOW, expires_at=NOW + 60, down=1, up=1)  # fmt: skip
    start_session(r, s, NOW)
    assert [x.sid for x in online_sessions(r)] == [s.sid]
    ended = end_session(r, s.sid, "kicked", NOW + 5, bytes_up=10, bytes_down=20)
    assert ended is not None and ended.end_reason == "kicked" and ended.bytes_down == 20
    assert end_session(r, s.sid, "expired", NOW + 6) is None, "only one end"
    assert online_sessions(r) == []
    events = r.xrange(keys.EVENTS)
    assert [e[1]["event"] for e in events] == ["start", "end"]
    assert events[1][1]["reason"] == "kicked" and events[1][1]["duration"] == "5.0"


def test_late_usage_goes_to_an_ended_session_only(r):
    s = new_session(mac="02:00:00:00:01:01", ip="10.42.0.100", kind="admin", plan="harian",
                    now=NOW, expires_at=NOW + 60, down=1, up=1)  # fmt: skip
    start_session(r, s, NOW)
    assert add_late_usage(r, s.sid, 5, 5) is None, "an online session is accounted by the passes"
    end_session(r, s.sid, "logout", NOW + 5, bytes_up=10, bytes_down=20)
    late = add_late_usage(r, s.sid, 100, 200)
    assert late is not None and (late.bytes_up, late.bytes_down) == (110, 220)
    stored = get_session(r, s.sid)
    assert (stored.bytes_up, stored.bytes_down) == (110, 220)
    assert add_late_usage(r, s.sid, 0, -3) is None and add_late_usage(r, "nosuch", 1, 1) is None


def test_redeem_starts_a_session_and_limits_devices(r):
    [voucher] = issue_batch(r, PLAN, 1, now=NOW, issued_by="test")
    typed = format_code(voucher.code).lower()
    session = redeem(r, typed, mac="02:00:00:00:01:01", ip="10.42.0.100", plans=PLANS, now=NOW)
    assert session.voucher_id == voucher.id and session.expires_at == NOW + 7200
    again = redeem(r, voucher.code, mac="02:00:00:00:01:01", ip="10.42.0.100", plans=PLANS, now=NOW + 9)
    assert again.sid == session.sid, "logging in twice gives the same session"
    with pytest.raises(VoucherDeviceLimit):
        redeem(r, voucher.code, mac="02:00:00:00:01:02", ip="10.42.0.101", plans=PLANS, now=NOW + 10)
    with pytest.raises(VoucherExpired):
        end_session(r, session.sid, "logout", NOW + 20)
        redeem(r, voucher.code, mac="02:00:00:00:01:01", ip="10.42.0.100", plans=PLANS, now=NOW + 7201)


def test_wrong_code_does_not_log_an_online_visitor_out(r):
    [voucher] = issue_batch(r, PLAN, 1, now=NOW, issued_by="test")
    session = redeem(r, voucher.code, mac="02:00:00:00:01:01", ip="10.42.0.100", plans=PLANS, now=NOW)
    with pytest.raises(VoucherNotFound):
        redeem(r, "ZZZZ-ZZZZ", mac="02:00:00:00:01:01", ip="10.42.0.100", plans=PLANS, now=NOW)
    assert [s.sid for s in online_sessions(r)] == [session.sid]


def test_unused_voucher_expires_after_its_validity(r):
    [voucher] = issue_batch(r, PLAN, 1, now=NOW, issued_by="test")
    with pytest.raises(VoucherExpired):
        redeem(r, voucher.code, mac="02:00:00:00:01:01", ip="10.42.0.1", plans=PLANS, now=NOW + 31 * 86400)


def test_single_day_voucher_ends_at_midnight_local_time(r):
    [voucher] = issue_batch(r, PLAN, 1, now=NOW, issued_by="test")
    late = NOW + 8.5 * 3600  # 23:30 WIB
    session = redeem(r, voucher.code, mac="02:00:00:00:01:01", ip="10.42.0.1", plans=PLANS, now=late)
    assert session.expires_at == NOW + 9 * 3600  # 00:00 WIB, not 01:30
