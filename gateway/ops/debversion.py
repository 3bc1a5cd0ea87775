"""Set the version of a copy of the tree before it is packaged: ``make deb DEB_VERSION=X``.

Run by the Makefile in the build copy (never in the checkout), with Debian's ``python3``::

    python3 -m gateway.ops.debversion 0.1.1

It rewrites ``gateway.__version__`` in ``gateway/__init__.py`` (the wheel's and
``hotspotctl --version``'s version) and puts a changelog entry for ``X`` on top of
``debian/changelog`` (the package's version), so both say the same, as
``tests/package/test_deb.py`` requires of a release. ``X`` must be a version both Python
(PEP 440) and Debian accept and sort the same way: ``0.1.1``, ``0.2.0``, ``0.1.0+pilot1``
(not ``0.2.0~rc1``, which Python refuses).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

__all__ = ["set_version", "main"]

# PEP 440's public versions with an optional local part, restricted to what Debian sorts alike
VERSION = re.compile(r"^\d+(\.\d+)*(\+[a-z0-9]+(\.[a-z0-9]+)*)?$")
PACKAGE = "perpuseru-hotspot"


def set_version(tree: Path, version: str, *, when: float | None = None) -> None:
    """Make the tree at ``tree`` say ``version`` in gateway/__init__.py and debian/changelog."""
    if not VERSION.match(version):
        raise ValueError(
            f"{version!r}: use digits and dots, optionally +letters/digits (e.g. 0.1.1, 0.1.0+pilot1)"
        )
    init = tree / "gateway" / "__init__.py"
    text, count = re.subn(
        r'^__version__ = "[^"]*"$', f'__version__ = "{version}"', init.read_text(), flags=re.M
    )
    if count != 1:
        raise ValueError(f"{init}: no single __version__ line")
    init.write_text(text)
    changelog = tree / "debian" / "changelog"
    old = changelog.read_text()
    trailer = next(line for line in old.splitlines() if line.startswith(" -- "))
    maintainer = trailer[4:].split("  ", 1)[0]
    entry = (
        f"{PACKAGE} ({version}) bookworm; urgency=medium\n\n"
        f"  * Built from this tree as {version} (make deb DEB_VERSION={version}).\n\n"
        f" -- {maintainer}  {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime(when))}\n\n"
    )
    changelog.write_text(entry + old)


def main(argv: list[str] | None = None) -> int:
    """``python3 -m gateway.ops.debversion VERSION`` in the tree to change (the build copy)."""
    parser = argparse.ArgumentParser(
        prog="python3 -m gateway.ops.debversion", description=__doc__.split("\n")[0]
    )
    parser.add_argument("version")
    args = parser.parse_args(argv)
    try:
        set_version(Path.cwd(), args.version)
    except (ValueError, OSError) as err:
        print(f"DEB_VERSION: {err}", file=sys.stderr)
        return 2
    print(f"building as version {args.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
