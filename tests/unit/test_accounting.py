"""Accounting: bytes from class counters, marks across restarts, rates, quotas (real Redis)."""

from __future__ import annotations

import pytest

from gateway import accounting, keys
from gateway.accounting import Marks, account, over_quota, read_marks, write_usage
from gateway.sessions import get_session, new_session, start_session

NOW = 1_700_000_000.0


def _session(slot=1, **kw):
    s = new_session(
        mac="02:00:00:00:01:01", ip="10.42.0.100", kind="voucher", plan="harian", now=NOW,
        expires_at=NOW + 3600, down=4_000_000, up=2_000_000, **kw,
    )  # fmt: skip
    import dataclasses

    return dataclasses.replace(s, slot=slot)


@pytest.mark.parametrize(
    ("bytes_so_far", "counter", "mark", "total", "rate"),
    [
        ((0, 0), (1000, 500), Marks(0, 0, NOW - 2), (1000, 500), (4000, 2000)),  # new session
        ((5000, 100), (9000, 700), Marks(8000, 600, NOW - 4), (6000, 200), (2000, 200)),  # growth
        ((5000, 100), (300, 50), Marks(8000, 600, NOW - 2), (5300, 150), (1200, 200)),  # class rebuilt
        ((5000, 100), (8000, 600), Marks(8000, 600, NOW - 2), (5000, 100), (0, 0)),  # idle
        ((0, 0), (1000, 0), Marks(0, 0, 0.0), (1000, 0), (None, None)),  # no time: no rate
    ],
)
def test_account(bytes_so_far, counter, mark, total, rate):
    import dataclasses

    s = dataclasses.replace(_session(), bytes_down=bytes_so_far[0], bytes_up=bytes_so_far[1])
    [usage] = account([s], {1: counter}, {s.sid: mark}, NOW)
    assert (usage.bytes_down, usage.bytes_up) == total
    assert (usage.mark_down, usage.mark_up) == counter
    assert (usage.rate_down, usage.rate_up) == rate


def test_sessions_without_a_class_are_not_accounted():
    assert account([_session(slot=0), _session(slot=5)], {1: (10, 10)}, {}, NOW) == []


def test_quota():
    s = _session(quota=10_000)
    [under] = account([s], {1: (6000, 3999)}, {}, NOW)
    [used] = account([s], {1: (6000, 4000)}, {}, NOW)
    assert not over_quota(s, under) and over_quota(s, used)
    [free] = account([_session()], {1: (10**12, 0)}, {}, NOW)
    assert not over_quota(_session(), free)


def test_usage_round_trips_through_redis(r):
    s = start_session(r, _session(), NOW)
    [usage] = account([s], {1: (1500, 300)}, {s.sid: Marks(0, 0, NOW - 3)}, NOW)
    write_usage(r, [usage])
    stored = get_session(r, s.sid)
    assert (stored.bytes_down, stored.bytes_up) == (1500, 300)
    assert read_marks(r, [s.sid]) == {s.sid: Marks(1500, 300, NOW)}
    assert r.hget(keys.session(s.sid), accounting.RATE_DOWN) == "4000"


def test_writing_usage_never_resurrects_a_deleted_session(r):
    s = start_session(r, _session(), NOW)
    [usage] = account([s], {1: (1500, 300)}, {}, NOW)
    r.delete(keys.session(s.sid))
    write_usage(r, [usage])
    assert not r.exists(keys.session(s.sid))
