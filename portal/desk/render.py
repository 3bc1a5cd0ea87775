"""Pure rendering helpers for the desk: formatting, the usage chart, QR codes.

Nothing here reads Redis or the request; views pass data in and get text or markup out.
The chart is an inline SVG built from numbers (no script, no external asset), so it
shows on any desk PC, prints, and passes the portal's strict Content-Security-Policy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from gateway.units import format_size
from portal import formats

__all__ = ["Formatter", "card_qr", "card_url", "usage_chart", "wifi_join_text"]


@dataclass(frozen=True)
class Formatter:
    """Formats for templates (``fmt.time(ts)``...), in the library's time zone and the desk's
    language (numbers, sizes, speeds and clock times through Babel: :mod:`portal.formats`)."""

    tz: ZoneInfo
    locale: str = "id"

    @property
    def _formats(self) -> formats.Formats:
        return formats.Formats(self.locale, self.tz)

    def time(self, ts: float, with_date: bool = True) -> str:
        if not ts:
            return "–"
        clock = self._formats.clock(ts)
        return f"{self.date(ts)} {clock}" if with_date else clock

    def date(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, self.tz).strftime("%d-%m-%Y") if ts else "–"

    def size(self, n: float | None) -> str:
        return "–" if n is None else self._formats.size(n)

    def duration(self, seconds: float) -> str:
        return self._formats.duration(seconds)

    def rate(self, bps: float | None) -> str:
        return "–" if not bps else self._formats.rate(bps)

    def hours(self, seconds: float) -> str:
        return self._formats.decimal(seconds / 3600, "0.0")


def card_url(portal_url: str, display_code: str) -> str:
    """Return what a card's QR code opens: the portal's login with the code filled in."""
    return f"{portal_url}/?code={display_code}"


def wifi_join_text(ssid: str) -> str:
    """Return what a "join this Wi-Fi" QR code holds for an open network (``WIFI:S:...;T:nopass;;``).

    The de-facto format phone cameras read (ZXing's): a backslash, ``;``, ``,``, ``"`` and ``:`` in
    the name are escaped with a backslash.
    """
    escaped = "".join("\\" + ch if ch in '\\;,":' else ch for ch in ssid)
    return f"WIFI:S:{escaped};T:nopass;;"


def card_qr(url: str) -> str:
    """Return a QR code of ``url`` as an SVG data URI (error correction M, crisp at 2-3 cm)."""
    # deliberate: segno is loaded by the first desk page with a QR code, not by every visitor's worker
    import segno

    qr = segno.make(url, error="m", micro=False)
    return qr.svg_data_uri(scale=4, border=2, dark="#000", light="#fff")


def usage_chart(
    labels: Sequence[str],
    data_bytes: Sequence[int],
    devices: Sequence[float | None],
    *,
    title: str,
    data_label: str,
    devices_label: str,
    width: int = 720,
    height: int = 200,
    size_text: Callable[[float], str] = format_size,
    label_every: int = 3,
) -> Markup:
    """Return an SVG chart: bars of data per hour, a line of devices online on average.

    ``labels`` name the bars ("08:00"); every third is written under the axis. A
    ``None`` in ``devices`` (an hour still to come) leaves the line out there.
    ``size_text`` writes a size in the reader's language (``Formatter.size``); every
    ``label_every``-th bar is labelled under the axis.
    """
    n = max(1, len(labels))
    peak_text = size_text(max([*data_bytes, 1]))
    # room for the longest axis label ("12,3 MB" at 11 px is ~50 px): it was clipped at 48
    left, right, top, bottom = max(48, 12 + 7 * len(peak_text)), 40, 24, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / n
    peak = max([*data_bytes, 1])
    peak_devices = max([*(d for d in devices if d is not None), 1.0])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'class="chart" aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" class="axis">{escape(peak_text)}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" class="axis">0</text>',
        f'<text x="{left + plot_w + 6}" y="{top + 4}" class="axis">{peak_devices:.0f}</text>',
    ]
    for i, (label, value) in enumerate(zip(labels, data_bytes, strict=True)):
        h = plot_h * value / peak
        x = left + i * step + step * 0.15
        parts.append(
            f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" '
            f'class="bar"><title>{escape(label)}: {escape(size_text(value))}</title></rect>'
        )
        if i % label_every == 0:
            parts.append(
                f'<text x="{left + i * step + step / 2:.1f}" y="{height - 8}" text-anchor="middle" '
                f'class="axis">{escape(label)}</text>'
            )
    points = " ".join(
        f"{left + i * step + step / 2:.1f},{top + plot_h - plot_h * d / peak_devices:.1f}"
        for i, d in enumerate(devices)
        if d is not None
    )
    if points:
        parts.append(f'<polyline points="{points}" class="line" fill="none"/>')
    parts.append(
        f'<text x="{left}" y="14" class="legend"><tspan class="bar-key">■</tspan> {escape(data_label)} '
        f'<tspan class="line-key">━</tspan> {escape(devices_label)}</text></svg>'
    )
    return Markup("".join(parts))  # noqa: S704 - numbers and escape()d labels only
