"""Parse and format the human units used in config files, the CLI and the UI.

Rates are bits per second (tc's spelling: ``"10mbit"``), sizes are bytes
(``"500MB"``, decimal, or ``"1GiB"``, binary), durations are seconds
(``"90s"``, ``"15m"``, ``"2h"``, ``"30d"``, ``"1h30m"``). Every parser raises
:class:`ValueError` with a message that says what a good value looks like, so
config and CLI errors can show it as is.
"""

from __future__ import annotations

import re

__all__ = [
    "parse_rate",
    "parse_size",
    "parse_duration",
    "format_rate",
    "format_size",
    "format_duration",
]

_RATE_UNITS = {"bit": 1, "kbit": 1_000, "mbit": 1_000_000, "gbit": 1_000_000_000}
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

_NUMBER_UNIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_DURATION_PART = re.compile(r"(\d+)\s*([smhdw])")


def _quote(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def parse_rate(value: object) -> int:
    """Return a rate in bits per second from ``"10mbit"``, ``"512kbit"`` and the like."""
    hint = f'{_quote(value)} is not a rate; use e.g. "10mbit" or "512kbit"'
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(hint)
    if isinstance(value, int):
        raise ValueError(f'{value} has no unit; write it as e.g. "{value}kbit" or "{value}mbit"')
    match = _NUMBER_UNIT.match(value)
    if not match:
        raise ValueError(hint)
    number, unit = match.groups()
    unit = unit.lower()
    if unit in ("bps", "kbps", "mbps", "gbps"):
        # tc reads "mbps" as megabytes per second; people usually mean megabits.
        raise ValueError(f'{_quote(value)} is not a rate; use e.g. "{number}{unit[:-3]}bit"')
    if unit not in _RATE_UNITS:
        raise ValueError(hint)
    bits = round(float(number) * _RATE_UNITS[unit])
    if bits <= 0:
        raise ValueError(f"{_quote(value)} must be more than zero")
    return bits


def parse_size(value: object) -> int:
    """Return a size in bytes from ``"500MB"``, ``"2GB"``, ``"1GiB"`` and the like."""
    hint = f'{_quote(value)} is not a size; use e.g. "500MB" or "2GB"'
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(hint)
    match = _NUMBER_UNIT.match(value)
    if not match:
        raise ValueError(hint)
    number, unit = match.groups()
    unit = unit.lower() or "b"
    if unit not in _SIZE_UNITS:
        raise ValueError(hint)
    size = round(float(number) * _SIZE_UNITS[unit])
    if size <= 0:
        raise ValueError(f"{_quote(value)} must be more than zero")
    return size


def parse_duration(value: object) -> int:
    """Return a duration in seconds from ``"90s"``, ``"15m"``, ``"2h"``, ``"1h30m"``, ``"30d"``."""
    hint = f'{_quote(value)} is not a duration; use e.g. "30s", "15m", "2h" or "30d"'
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(hint)
    text = value.strip().lower()
    if not text or _DURATION_PART.sub("", text).strip():
        raise ValueError(hint)
    seconds = sum(int(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))
    if seconds <= 0:
        raise ValueError(f"{_quote(value)} must be longer than zero")
    return seconds


def format_rate(bits_per_second: float) -> str:
    """Return a short human rate such as ``"2.5 Mbit/s"``."""
    for unit, factor in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bits_per_second >= factor:
            return f"{bits_per_second / factor:.3g} {unit}"
    return f"{bits_per_second:.0f} bit/s"


def format_size(num_bytes: float) -> str:
    """Return a short human size in decimal units such as ``"12.3 MB"``."""
    for unit, factor in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if num_bytes >= factor:
            return f"{num_bytes / factor:.3g} {unit}"
    return f"{num_bytes:.0f} B"


def format_duration(seconds: float) -> str:
    """Return a compact duration such as ``"1h05m"``, ``"4m10s"``, ``"2d3h"``, or ``"30d"`` and
    ``"2h"`` when the smaller part is zero (never ``"30d0h"``); :func:`parse_duration` reads it back."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m{secs:02d}s" if secs else f"{minutes}m"
    return f"{secs}s"
