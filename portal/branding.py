"""The co-branding on the splash page (and on printed voucher cards).

The PerpuSeru program is Telkom Indonesia's and Coca-Cola Foundation Indonesia's, so
every visitor page shows three marks: ``telkom``, ``ccfi`` and ``perpuseru``, and the
library's own ``library`` mark when it has one. The project ships neutral text marks
for the first three (``portal/static/branding/*.svg``: the names in plain text, one
grey style, sized to fit a 320-px phone; nothing imitates a partner's logo or
lettering); a library puts the real artwork in by dropping ``<name>.svg`` or
``<name>.png`` into ``library.branding_dir``.

Drawn marks are inlined into the page (no extra request, a few hundred bytes each).
Replacement files are served by the portal at ``/branding/<name>.<ext>`` as images
(an SVG loaded as an image runs no script), and must stay under :data:`MAX_FILE`
bytes so the splash stays light; a bigger file is ignored with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from markupsafe import Markup

from gateway.logs import get_logger

__all__ = ["MARKS", "MAX_FILE", "Mark", "default_svg", "marks", "replacement"]

MARKS = ("telkom", "ccfi", "perpuseru", "library")
LABELS = {
    "telkom": "Telkom Indonesia",
    "ccfi": "Coca-Cola Foundation Indonesia",
    "perpuseru": "PerpuSeru",
}
MAX_FILE = 32 * 1024
TYPES = {"svg": "image/svg+xml", "png": "image/png"}
log = get_logger("portal")


@dataclass(frozen=True)
class Mark:
    """One mark: either ``inline`` SVG markup or an image ``src`` served by the portal."""

    name: str
    label: str
    inline: Markup | None = None
    src: str | None = None


@cache
def default_svg(name: str) -> Markup | None:
    """Return the project's drawn wordmark ``name`` as SVG markup, or None if there is none."""
    try:
        text = resources.files("portal").joinpath("static", "branding", f"{name}.svg").read_text()
    except FileNotFoundError:
        return None
    return Markup(text.strip())  # noqa: S704 - our own packaged file, not input


def replacement(branding_dir: Path, name: str) -> Path | None:
    """Return the library's file replacing mark ``name`` (``.svg`` before ``.png``), if usable."""
    if name not in MARKS:
        return None
    for ext in TYPES:
        path = branding_dir / f"{name}.{ext}"
        try:
            size = path.stat().st_size
        except OSError:
            continue
        if not path.is_file():
            continue
        if size > MAX_FILE:
            log.warning("branding_file_too_large", path=str(path), size=size, limit=MAX_FILE)
            continue
        return path
    return None


def marks(branding_dir: Path, library_name: str) -> list[Mark]:
    """Return the marks to show, in order: partners, program, then the library's own if any."""
    found = []
    for name in MARKS:
        label = LABELS.get(name, library_name)
        path = replacement(branding_dir, name)
        if path is not None:
            found.append(Mark(name, label, src=f"/branding/{path.name}"))
        elif (svg := default_svg(name)) is not None:
            found.append(Mark(name, label, inline=svg))
    return found
