"""The complete voucher model on a real Redis: batches, devices, expiry, revoke, extend, list, quota."""

from __future__ import annotations

import pytest

from gateway.config import Plan
from gateway.model import audit, keys
from gateway.model.plans import PlanUnavailable, available_plans, set_available
from gateway.model.sessions import end_session, get_session, online_sessions, update_usage
from gateway.model.voucher_admin import (
    extend_client,
    extend_voucher,
    get_batch,
    kick_client,
    list_vouchers,
    purge_vouchers,
    revoke_batch,
    revoke_voucher,
)
from gateway.model.vouchers import (
    MAX_BATCH,
    DuplicateRequest,
    VoucherDeviceLimit,
    VoucherExhausted,
    VoucherExpired,
    VoucherNotFound,
    VoucherRevoked,
    clean_note,
    format_code,
    get_voucher,
    issue_batch,
    quota_overruns,
    redeem,
)

NOW = 1_800_000_000.0  # 2027-01-15 08:00 UTC (15:00 WIB)
HOUR = 3600
DAY = 86400


def _plan(name, **kw):
    base = dict(label={"id": name}, duration=2 * HOUR, validity=30 * DAY, quota=None, down=4_000_000,
                up=2_000_000, weight=1.0, max_devices=1, multi_day=False)  # fmt: skip
    base.update(kw)
    return Plan(name=name, **base)


PLANS = {
    "harian": _plan("harian"),
    "kelas": _plan("kelas", duration=3 * HOUR, validity=7 * DAY, max_devices=3),
    "gratis": _plan("gratis", duration=30 * 60, validity=DAY, quota=200_000_000),
    "pekan": _plan("pekan", duration=7 * DAY, validity=30 * DAY, multi_day=True),
}


def mac(i):
    return f"02:00:00:00:01:{i:02x}"


def sent(r):
    """The commands sent to the gateway so far, as (op, sid)."""
    return [(fields["op"], fields.get("sid")) for _id, fields in r.xrange(keys.COMMANDS)]


def use(r, code, i, now):
    return redeem(r, code, mac=mac(i), ip=f"10.42.0.{100 + i}", plans=PLANS, now=now)


def test_batch_is_recorded_with_who_and_note(r):
    vouchers = issue_batch(r, PLANS["kelas"], 10, now=NOW, issued_by="siti", note="kelas komputer Selasa")
    assert len({v.code for v in vouchers}) == 10
    batch, printed = get_batch(r, vouchers[0].batch)
    assert batch.count == 10 and batch.issued_by == "siti" and batch.note == "kelas komputer Selasa"
    assert [v.code for v in printed] == [v.code for v in vouchers]
    [entry] = audit.recent(r)
    assert entry.actor == "siti" and entry.action == "voucher_issue" and entry.details["count"] == "10"
    stream = str(r.xrange(keys.AUDIT))
    assert not any(v.code in stream for v in vouchers), "codes never go into the audit trail"


@pytest.mark.parametrize("count", [0, -1, MAX_BATCH + 1, 100_000, True, "5"])
def test_bad_counts_issue_nothing(r, count):
    with pytest.raises(ValueError):
        issue_batch(r, PLANS["harian"], count, now=NOW, issued_by="siti")
    assert r.dbsize() == 0


def test_note_is_cleaned_and_bounded(r):
    assert clean_note("  kelas\x00 komputer\n Selasa ") == "kelas komputer Selasa"
    with pytest.raises(ValueError):
        issue_batch(r, PLANS["harian"], 1, now=NOW, issued_by="siti", note="x" * 500)
    assert r.dbsize() == 0


def test_same_form_twice_issues_one_batch(r):
    first = issue_batch(r, PLANS["harian"], 3, now=NOW, issued_by="siti", request_id="abc123")
    with pytest.raises(DuplicateRequest) as err:
        issue_batch(r, PLANS["harian"], 3, now=NOW + 1, issued_by="siti", request_id="abc123")
    assert err.value.batch_id == first[0].batch
    assert r.zcard(keys.VOUCHERS) == 3


def test_switched_off_plan_issues_nothing_but_its_vouchers_work(r):
    [voucher] = issue_batch(r, PLANS["harian"], 1, now=NOW, issued_by="siti")
    assert set_available(r, PLANS, "harian", False, actor="admin", now=NOW)
    assert [p.name for p in available_plans(r, PLANS)] == ["kelas", "gratis", "pekan"]
    with pytest.raises(PlanUnavailable):
        issue_batch(r, PLANS["harian"], 1, now=NOW, issued_by="siti")
    assert use(r, voucher.code, 1, NOW).voucher_id == voucher.id
    with pytest.raises(PlanUnavailable):
        set_available(r, PLANS, "nope", True, actor="admin", now=NOW)


def test_devices_up_to_the_plans_limit(r):
    [voucher] = issue_batch(r, PLANS["kelas"], 1, now=NOW, issued_by="siti")
    sessions = [use(r, voucher.code, i, NOW + i) for i in (1, 2, 3)]
    assert len({s.sid for s in sessions}) == 3
    with pytest.raises(VoucherDeviceLimit):
        use(r, voucher.code, 4, NOW + 10)
    end_session(r, sessions[0].sid, "logout", NOW + 20)
    fourth = use(r, voucher.code, 4, NOW + 30)
    assert fourth.expires_at == NOW + 1 + 3 * HOUR, "all devices share the time from first use"


def test_time_counts_from_first_use_not_from_issue(r):
    [voucher] = issue_batch(r, PLANS["pekan"], 1, now=NOW, issued_by="siti")
    later = NOW + 10 * DAY
    session = use(r, voucher.code, 1, later)
    assert session.expires_at == later + 7 * DAY
    assert get_voucher(r, voucher.code).state(later + 1, PLANS["pekan"]) == "in_use"
    end_session(r, session.sid, "logout", later + HOUR)
    assert use(r, voucher.code, 1, later + 3 * DAY).expires_at == later + 7 * DAY, "another day: same end"
    with pytest.raises(VoucherExpired):
        use(r, voucher.code, 2, later + 7 * DAY)


def test_validity_window_of_an_unused_voucher(r):
    [voucher] = issue_batch(r, PLANS["gratis"], 1, now=NOW, issued_by="siti")
    assert get_voucher(r, voucher.code).state(NOW + DAY - 1, PLANS["gratis"]) == "unused"
    assert get_voucher(r, voucher.code).state(NOW + DAY, PLANS["gratis"]) == "expired"
    with pytest.raises(VoucherExpired):
        use(r, voucher.code, 1, NOW + DAY)
    extend_voucher(r, voucher.code, PLANS, seconds=DAY, actor="siti", now=NOW + DAY)
    assert use(r, voucher.code, 1, NOW + DAY + 5).voucher_id == voucher.id


def test_revoke_while_in_use_ends_the_sessions_and_tells_the_gateway(r):
    [voucher] = issue_batch(r, PLANS["kelas"], 1, now=NOW, issued_by="siti")
    s1, s2 = use(r, voucher.code, 1, NOW), use(r, voucher.code, 2, NOW + 1)
    revoked, ended = revoke_voucher(r, format_code(voucher.code).lower(), actor="rudi", now=NOW + 60)
    assert revoked.revoked_by == "rudi" and {s.sid for s in ended} == {s1.sid, s2.sid}
    assert online_sessions(r) == []
    assert get_session(r, s1.sid).end_reason == "revoked"
    assert sorted(sent(r)) == sorted([("deauthorize", s1.sid), ("deauthorize", s2.sid)])
    with pytest.raises(VoucherRevoked):
        use(r, voucher.code, 1, NOW + 61)
    with pytest.raises(VoucherRevoked):
        revoke_voucher(r, voucher.code, actor="rudi", now=NOW + 62)  # twice: a clear error, no change
    assert [e.action for e in audit.recent(r)] == ["voucher_revoke", "voucher_issue"]
    assert get_voucher(r, voucher.code).state(NOW + 70, PLANS["kelas"]) == "revoked"


def test_revoke_a_batch_leaves_used_up_vouchers_alone(r):
    vouchers = issue_batch(r, PLANS["harian"], 4, now=NOW, issued_by="siti")
    session = use(r, vouchers[0].code, 1, NOW)
    revoke_voucher(r, vouchers[1].code, actor="siti", now=NOW)
    assert revoke_batch(r, vouchers[0].batch, PLANS, actor="siti", now=NOW + 5) == (3 - 1 + 1, 1)
    assert get_session(r, session.sid).end_reason == "revoked"
    with pytest.raises(VoucherNotFound):
        revoke_batch(r, "ffffffff", PLANS, actor="siti", now=NOW)


def test_unknown_and_malformed_codes(r):
    for text in ("ZZZZ-ZZZZ", "", "x" * 1000, "<script>"):
        with pytest.raises(VoucherNotFound):
            revoke_voucher(r, text, actor="siti", now=NOW)
        with pytest.raises(VoucherNotFound):
            extend_voucher(r, text, PLANS, seconds=60, actor="siti", now=NOW)


def test_extend_a_voucher_in_use_moves_its_sessions_end(r):
    [voucher] = issue_batch(r, PLANS["harian"], 1, now=NOW, issued_by="siti")
    session = use(r, voucher.code, 1, NOW)
    extended = extend_voucher(r, voucher.code, PLANS, seconds=HOUR, actor="siti", now=NOW + 60)
    assert extended.expires_at == session.expires_at + HOUR
    assert get_session(r, session.sid).expires_at == session.expires_at + HOUR
    assert sent(r) == [("authorize", session.sid)]
    # a used-up voucher gets the time from now
    end_session(r, session.sid, "expired", NOW + 3 * HOUR)
    later = NOW + 5 * HOUR
    assert get_voucher(r, voucher.code).state(later, PLANS["harian"]) == "used_up"
    again = extend_voucher(r, voucher.code, PLANS, seconds=HOUR, actor="siti", now=later)
    assert again.expires_at == later + HOUR
    with pytest.raises(ValueError):
        extend_voucher(r, voucher.code, PLANS, seconds=0, actor="siti", now=later)
    with pytest.raises(ValueError):
        extend_voucher(r, voucher.code, PLANS, seconds=365 * DAY, actor="siti", now=later)
    with pytest.raises(ValueError):
        extend_voucher(r, voucher.code, PLANS, data=10**6, actor="siti", now=later)  # no quota plan


def test_quota_counts_across_the_vouchers_sessions(r):
    [voucher] = issue_batch(r, PLANS["gratis"], 1, now=NOW, issued_by="siti")
    first = use(r, voucher.code, 1, NOW)
    assert first.quota == 200_000_000
    end_session(r, first.sid, "logout", NOW + 60, bytes_up=20_000_000, bytes_down=130_000_000)
    assert get_voucher(r, voucher.code).bytes_used == 150_000_000
    second = use(r, voucher.code, 2, NOW + 120)
    assert second.quota == 50_000_000, "the next session gets what is left"
    end_session(r, second.sid, "quota", NOW + 180, bytes_down=50_000_000)
    assert get_voucher(r, voucher.code).state(NOW + 200, PLANS["gratis"]) == "used_up"
    with pytest.raises(VoucherExhausted):
        use(r, voucher.code, 1, NOW + 240)
    extend_voucher(r, voucher.code, PLANS, data=100_000_000, actor="siti", now=NOW + 250)
    assert use(r, voucher.code, 1, NOW + 260).quota == 100_000_000


def test_quota_overruns_with_devices_online_at_once(r):
    plans = {**PLANS, "gratis": _plan("gratis", duration=HOUR, quota=100, max_devices=2)}
    [voucher] = issue_batch(r, plans["gratis"], 1, now=NOW, issued_by="siti")
    a = redeem(r, voucher.code, mac=mac(1), ip="10.42.0.101", plans=plans, now=NOW)
    b = redeem(r, voucher.code, mac=mac(2), ip="10.42.0.102", plans=plans, now=NOW)
    update_usage(r, {a.sid: (0, 60, NOW + 5), b.sid: (0, 30, NOW + 5)})
    assert quota_overruns(r, plans, online_sessions(r)) == []
    update_usage(r, {b.sid: (0, 45, NOW + 6)})
    assert sorted(quota_overruns(r, plans, online_sessions(r))) == sorted([a.sid, b.sid])


def test_list_and_filter_by_state(r):
    plans = PLANS
    vouchers = issue_batch(r, plans["harian"], 5, now=NOW, issued_by="siti")
    other = issue_batch(r, plans["kelas"], 2, now=NOW + 10, issued_by="rudi")
    in_use = use(r, vouchers[0].code, 1, NOW + 20)
    used = use(r, vouchers[1].code, 2, NOW + 20)
    end_session(r, used.sid, "logout", NOW + 30)
    revoke_voucher(r, vouchers[2].code, actor="siti", now=NOW + 40)
    later = NOW + 60
    rows, more = list_vouchers(r, plans, now=later)
    assert len(rows) == 7 and not more
    assert [row.voucher.plan for row in rows[:2]] == ["kelas", "kelas"], "newest first"
    states = {row.voucher.code: row.state for row in rows}
    assert states[vouchers[0].code] == "in_use" and states[vouchers[2].code] == "revoked"
    assert [row.online for row in rows if row.voucher.code == vouchers[0].code] == [1]
    assert len(list_vouchers(r, plans, now=later, state="unused")[0]) == 4
    assert len(list_vouchers(r, plans, now=later, state="in_use")[0]) == 2  # one online, one with time left
    assert len(list_vouchers(r, plans, now=later, plan="kelas")[0]) == 2
    assert len(list_vouchers(r, plans, now=later, batch=other[0].batch)[0]) == 2
    page, more = list_vouchers(r, plans, now=later, limit=3, offset=3)
    assert len(page) == 3 and more
    assert list_vouchers(r, plans, now=NOW + 31 * DAY, state="expired")[0][0].state == "expired"
    with pytest.raises(ValueError):
        list_vouchers(r, plans, now=later, state="bogus")
    assert in_use.sid in {s.sid for s in online_sessions(r)}


def test_kick_and_extend_a_client(r):
    [voucher] = issue_batch(r, PLANS["harian"], 1, now=NOW, issued_by="siti")
    session = use(r, voucher.code, 1, NOW)
    extended = extend_client(r, session.sid, PLANS, seconds=30 * 60, actor="siti", now=NOW + 5)
    assert extended.expires_at == session.expires_at + 30 * 60
    assert get_voucher(r, voucher.code).expires_at == session.expires_at + 30 * 60
    ended = kick_client(r, session.sid, actor="siti", now=NOW + 10)
    assert ended.end_reason == "kicked"
    with pytest.raises(LookupError):
        kick_client(r, session.sid, actor="siti", now=NOW + 11)
    with pytest.raises(LookupError):
        kick_client(r, "../../etc", actor="siti", now=NOW + 11)
    assert [e.action for e in audit.recent(r, limit=2)] == ["client_kick", "voucher_extend"]


def test_purge_keeps_usable_vouchers_and_the_reports(r):
    unused, used, revoked, lapsed = (
        issue_batch(r, PLANS["harian"], 1, now=NOW, issued_by="siti")[0] for _ in range(4)
    )
    session = use(r, used.code, 1, NOW)
    end_session(r, session.sid, "expired", NOW + 2 * HOUR)
    revoke_voucher(r, revoked.code, actor="siti", now=NOW + HOUR)
    r.hset(keys.voucher(lapsed.code), "valid_until", str(NOW + DAY))
    later = NOW + 40 * DAY
    assert purge_vouchers(r, PLANS, older_than=20 * DAY, actor="admin", now=later) == 3
    assert get_voucher(r, unused.code) is not None, "its validity ended only 10 days ago"
    assert r.zcard(keys.VOUCHERS) == 1 and r.zcard(keys.BATCHES) == 1, "empty batches go too"
    assert not r.exists(keys.voucher_by_id(used.id), keys.voucher_devices(used.code))
    assert purge_vouchers(r, PLANS, older_than=5 * DAY, actor="admin", now=later) == 1
    assert r.zcard(keys.VOUCHERS) == 0
    from gateway.model.reports import hour_id

    assert r.hget(keys.report_hour(hour_id(NOW)), "vouchers_issued") == "4"
