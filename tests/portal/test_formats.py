"""Indonesian conventions for numbers, sizes, speeds and times (Babel's data), English as English."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from portal import formats
from portal.desk.render import Formatter

JAKARTA = ZoneInfo("Asia/Jakarta")
AT = 1_800_000_000.0 - 8 * 3600 - 26 * 60  # 2027-01-15 06:34 WIB


@pytest.mark.parametrize(
    ("lang", "size", "big", "rate", "slow", "clock", "day"),
    [
        ("id", "12,3 MB", "1,23 GB", "2,5 Mbps", "512 kbps", "06.34", "15 Jan 06.34"),
        ("en", "12.3 MB", "1.23 GB", "2.5 Mbit/s", "512 kbit/s", "06:34", "Jan 15 06:34"),
    ],
)
def test_formats_follow_the_language(lang, size, big, rate, slow, clock, day):
    assert formats.size(12_300_000, lang) == size and formats.size(1_234_567_890, lang) == big
    assert formats.size(999, lang) == "999 B"
    assert formats.rate(2_500_000, lang) == rate and formats.rate(512_000, lang) == slow
    assert formats.clock(AT, lang, JAKARTA) == clock
    assert formats.day_and_clock(AT, lang, JAKARTA) == day


def test_desk_formatter_in_indonesian():
    fmt = Formatter(JAKARTA, "id")
    assert fmt.time(AT) == "15-01-2027 06.34" and fmt.time(AT, with_date=False) == "06.34"
    assert fmt.hours(5400) == "1,5" and fmt.size(12_300_000) == "12,3 MB" and fmt.rate(4_000_000) == "4 Mbps"
    assert fmt.size(None) == "–" and fmt.rate(0) == "–"
    assert Formatter(JAKARTA, "en").hours(5400) == "1.5"


def test_durations_in_words():
    assert [formats.duration(s, "id") for s in (7200, 3900, 30 * 86400, 90000, 250)] == [
        "2 jam", "1 jam 5 menit", "30 hari", "1 hari 1 jam", "4 menit 10 detik",
    ]  # fmt: skip
    assert formats.duration(3900, "en") == "1 hour 5 minutes" and formats.duration(0, "id") == "0 detik"
