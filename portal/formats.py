"""Numbers, sizes, speeds and times the way the reader's language writes them, through Babel.

Bahasa Indonesia writes a decimal comma, a dot between thousands and a dot in clock
times ("12,3 MB", "1.234", "06.34"; speeds in "Mbps", as Indonesian providers do);
English writes "12.3 MB", "1,234", "06:34", "Mbit/s". Nothing here is done by hand: the
digits, separators and clock patterns come from Babel's CLDR data for the locale, only the
unit names are ours. The visitor pages and the desk both use these (the desk through
:class:`portal.desk.render.Formatter`); the CLI and logs keep :mod:`gateway.units`.

Every function takes the locale (``"id"``, ``"en"``) and, for times, the time zone, so
it is pure and easy to test; :func:`here` binds them to the current request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from babel.dates import format_skeleton
from babel.numbers import format_decimal
from babel.units import format_unit

__all__ = ["Formats", "clock", "day_and_clock", "decimal", "duration", "here", "rate", "size"]

_SIZES = (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3))
# speeds: Indonesian providers and phones say "Mbps"; the English pages keep tc's "Mbit/s"
_RATES = {
    "id": (("Gbps", 1e9), ("Mbps", 1e6), ("kbps", 1e3), ("bps", 1)),
    "en": (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3), ("bit/s", 1)),
}
_SIGNIFICANT = "@##"  # up to three significant digits, as "12.3 MB" / "12,3 MB"


def decimal(value: float, locale: str, pattern: str | None = None) -> str:
    """Return ``value`` with the locale's decimal and grouping marks (``pattern``: CLDR's)."""
    return format_decimal(value, format=pattern, locale=locale)


def size(num_bytes: float, locale: str) -> str:
    """Return a short size in decimal units: ``"12,3 MB"`` (id), ``"12.3 MB"`` (en)."""
    for unit, factor in _SIZES:
        if num_bytes >= factor:
            return f"{format_decimal(num_bytes / factor, format=_SIGNIFICANT, locale=locale)} {unit}"
    return f"{format_decimal(num_bytes, format='0', locale=locale)} B"


def rate(bits_per_second: float, locale: str) -> str:
    """Return a short speed: ``"2,5 Mbps"`` (id), ``"2.5 Mbit/s"`` (en)."""
    units = _RATES.get(locale, _RATES["en"])
    unit, factor = next(((u, f) for u, f in units if bits_per_second >= f), units[-1])
    return f"{format_decimal(bits_per_second / factor, format=_SIGNIFICANT, locale=locale)} {unit}"


_DURATION_UNITS = (
    ("duration-day", 86400), ("duration-hour", 3600), ("duration-minute", 60), ("duration-second", 1),
)  # fmt: skip


def duration(seconds: float, locale: str) -> str:
    """Return a duration in words, its two largest parts: ``"1 jam 5 menit"``, ``"30 hari"`` (id),
    ``"1 hour 5 minutes"`` (en); never ``"30d0h"``."""
    rest = max(0, int(seconds))
    parts = []
    for unit, size_of in _DURATION_UNITS:
        count, rest = divmod(rest, size_of)
        if count:
            parts.append(format_unit(count, unit, length="long", locale=locale))
        elif parts:
            break  # "2 hari 0 jam 5 menit" says less than "2 hari"
        if len(parts) == 2:
            break
    return " ".join(parts) or format_unit(0, "duration-second", length="long", locale=locale)


def clock(ts: float | datetime, locale: str, tz: tzinfo) -> str:
    """Return the 24-hour clock time in ``tz``: ``"06.34"`` (id), ``"06:34"`` (en)."""
    at = ts if isinstance(ts, datetime) else datetime.fromtimestamp(ts, UTC)
    return format_skeleton("HHmm", at, tzinfo=tz, locale=locale)


def day_and_clock(ts: float | datetime, locale: str, tz: tzinfo) -> str:
    """Return day, month and time: ``"15 Jan 06.34"`` (id), ``"Jan 15 06:34"`` (en)."""
    at = ts if isinstance(ts, datetime) else datetime.fromtimestamp(ts, UTC)
    return f"{format_skeleton('MMMd', at, tzinfo=tz, locale=locale)} {clock(at, locale, tz)}"


@dataclass(frozen=True)
class Formats:
    """The functions above bound to one locale and time zone (a template's ``fmt``)."""

    locale: str
    tz: tzinfo

    def size(self, num_bytes: float) -> str:
        return size(num_bytes, self.locale)

    def rate(self, bits_per_second: float) -> str:
        return rate(bits_per_second, self.locale)

    def clock(self, ts: float | datetime) -> str:
        return clock(ts, self.locale, self.tz)

    def day_and_clock(self, ts: float | datetime) -> str:
        return day_and_clock(ts, self.locale, self.tz)

    def decimal(self, value: float, pattern: str | None = None) -> str:
        return decimal(value, self.locale, pattern)

    def duration(self, seconds: float) -> str:
        return duration(seconds, self.locale)


def here() -> Formats:
    """Return :class:`Formats` for the current request's language and the library's time zone."""
    from flask_babel import get_locale, get_timezone  # needs a request: only here

    return Formats(str(get_locale()), get_timezone())
