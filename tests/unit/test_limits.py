"""Live limits: parsed from the CLI's DOWN/UP, stored on the session, undone exactly."""

from __future__ import annotations

import pytest

from gateway.model.limits import LimitError, clear_limit, is_limited, parse_limit, set_limit
from gateway.model.sessions import end_session, get_session, new_session, start_session

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("text", "rates"),
    [
        ("1mbit/512kbit", (1_000_000, 512_000)),
        ("2mbit", (2_000_000, 2_000_000)),
        (" 1.5mbit / 1mbit ", (1_500_000, 1_000_000)),
    ],
)
def test_parse_limit(text, rates):
    assert parse_limit(text) == rates


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1mbit/512kbit/1", "DOWN/UP"),
        ("/512kbit", "DOWN/UP"),
        ("1mbps/512kbit", '"1mbit"'),
        ("fast", "is not a rate"),
    ],
)
def test_parse_limit_rejects(text, message):
    with pytest.raises(ValueError, match=message):
        parse_limit(text)


def _online(r):
    s = new_session(
        mac="02:00:00:00:01:02", ip="10.42.0.101", kind="voucher", plan="harian", now=NOW,
        expires_at=NOW + 3600, down=4_000_000, up=2_000_000,
    )  # fmt: skip
    return start_session(r, s, NOW)


def test_limit_and_undo(r):
    s = _online(r)
    assert not is_limited(r, s.sid)
    limited = set_limit(r, s.sid, 1_000_000, 512_000)
    assert (limited.down, limited.up) == (1_000_000, 512_000)
    assert (get_session(r, s.sid).down, get_session(r, s.sid).up) == (1_000_000, 512_000)
    # a second limit keeps the plan's caps to go back to
    set_limit(r, s.sid, 256_000, 256_000)
    assert is_limited(r, s.sid)
    restored = clear_limit(r, s.sid)
    assert (restored.down, restored.up) == (4_000_000, 2_000_000)
    assert get_session(r, s.sid) == restored
    assert not is_limited(r, s.sid)
    with pytest.raises(LimitError, match="no live limit"):
        clear_limit(r, s.sid)


def test_limit_needs_an_online_session(r):
    s = _online(r)
    end_session(r, s.sid, "kicked", NOW)
    with pytest.raises(LimitError, match="not online"):
        set_limit(r, s.sid, 1_000_000, 1_000_000)
    with pytest.raises(LimitError, match="not online"):
        set_limit(r, "nope", 1_000_000, 1_000_000)
