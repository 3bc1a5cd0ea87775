import pytest

from gateway.units import (
    format_duration,
    format_rate,
    format_size,
    parse_duration,
    parse_rate,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "bits"),
    [("10mbit", 10_000_000), ("512kbit", 512_000), ("1.5Mbit", 1_500_000), ("1gbit", 10**9), ("800bit", 800)],
)
def test_parse_rate(text, bits):
    assert parse_rate(text) == bits


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("10 mbps", 'is not a rate; use e.g. "10mbit"'),
        ("5 megs", "is not a rate"),
        (10, "has no unit"),
        ("0mbit", "more than zero"),
        (True, "is not a rate"),
    ],
)
def test_parse_rate_rejects(value, message):
    with pytest.raises(ValueError, match=message):
        parse_rate(value)


@pytest.mark.parametrize(
    ("text", "size"),
    [("500MB", 500_000_000), ("2GB", 2 * 10**9), ("1GiB", 1024**3), ("100kb", 100_000), ("42", 42)],
)
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("2h", 7200), ("1h30m", 5400), ("30d", 30 * 86400), ("1w", 604800)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "2 hours", "h", "-5m", 5, "0s"])
def test_parse_duration_rejects(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_formats():
    assert format_rate(2_500_000) == "2.5 Mbit/s"
    assert format_size(12_300_000) == "12.3 MB"
    assert format_duration(3900) == "1h05m"
    assert format_duration(250) == "4m10s"
    assert format_duration(-3) == "0s"
    # no zero parts: `plan list` printed "30d0h"
    assert [format_duration(s) for s in (30 * 86400, 7200, 1800, 90000)] == ["30d", "2h", "30m", "1d1h"]
    assert all(parse_duration(format_duration(s)) == s for s in (30 * 86400, 7200, 3900, 250, 1800))
