"""Free mode's per-device-per-day limit (real Redis); the survey is tests/unit/test_survey.py's."""

from __future__ import annotations

import threading

import pytest

from gateway.config import Plan
from gateway.model import keys
from gateway.model.free import FreeLimitReached, free_left, start_free_session
from gateway.model.sessions import end_session, session_for_mac

NOW = 1_800_000_000.0  # 2027-01-15 08:00 UTC = 15:00 WIB
TZ = "Asia/Jakarta"
FREE = Plan(name="gratis", label={"id": "Gratis"}, duration=1800, validity=86400, quota=200_000_000,
            down=1_000_000, up=512_000, weight=0.5, max_devices=1, multi_day=False)  # fmt: skip
MAC = "02:00:00:00:01:01"


def test_free_session_limits_and_day_boundary(r):
    session = start_free_session(r, FREE, mac=MAC, ip="10.42.0.100", per_day=1, now=NOW, timezone=TZ)
    assert session.kind == "free" and session.quota == FREE.quota and session.expires_at == NOW + 1800
    assert start_free_session(r, FREE, mac=MAC, ip="x", per_day=1, now=NOW, timezone=TZ).sid == session.sid
    assert free_left(r, MAC, per_day=1, now=NOW, timezone=TZ) == 0
    end_session(r, session.sid, "logout", NOW + 60)
    with pytest.raises(FreeLimitReached):
        start_free_session(r, FREE, mac=MAC, ip="10.42.0.100", per_day=1, now=NOW + 60, timezone=TZ)
    tomorrow = NOW + 9.1 * 3600  # 00:06 WIB
    assert free_left(r, MAC, per_day=1, now=tomorrow, timezone=TZ) == 1
    assert start_free_session(r, FREE, mac=MAC, ip="10.42.0.100", per_day=1, now=tomorrow, timezone=TZ)


def test_free_session_ends_at_midnight_unless_multi_day(r):
    late = NOW + 8.9 * 3600  # 23:54 WIB
    session = start_free_session(r, FREE, mac=MAC, ip="10.42.0.100", per_day=2, now=late, timezone=TZ)
    assert session.expires_at == NOW + 9 * 3600


def test_racing_taps_start_one_free_session(r, redis_url):
    from gateway.model.store import connect

    results, errors = [], []

    def tap():
        try:
            client = connect(redis_url)
            results.append(start_free_session(client, FREE, mac=MAC, ip="10.42.0.100", per_day=1,
                                              now=NOW, timezone=TZ).sid)  # fmt: skip
        except FreeLimitReached as err:
            errors.append(err)

    threads = [threading.Thread(target=tap) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and not errors, "every tap gets the one session"
    assert r.get(keys.free_used("2027-01-15", MAC)) == "1"
    assert session_for_mac(r, MAC).sid == results[0]


def test_free_sessions_per_hour_are_bounded_library_wide(r):
    from gateway.model.free import FreeHourFull

    hour_start = (int(NOW) // 3600 + 1) * 3600.0  # a fresh hour, well inside the day
    started = 0
    with pytest.raises(FreeHourFull) as refused:
        for n in range(10):  # one phone, a made-up MAC for every tap
            start_free_session(r, FREE, mac=f"02:00:00:00:9a:{n:02x}", ip=f"10.42.0.{150 + n}", per_day=1,
                               now=hour_start + n, timezone=TZ, per_hour=4)  # fmt: skip
            started += 1
    assert started == 4 and 3580 <= refused.value.retry_after <= 3600
    later = start_free_session(r, FREE, mac="02:00:00:00:9a:99", ip="10.42.0.199", per_day=1,
                               now=hour_start + 3600, timezone=TZ, per_hour=4)  # fmt: skip
    assert later.kind == "free", "the next hour has its own"
