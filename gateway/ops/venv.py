"""Move a venv built in a staging folder to the path it will run from.

``python3 -m venv STAGE/opt/perpuseru-hotspot`` then ``pip install`` writes the staging
path into every console script's first line (``#!STAGE/opt/perpuseru-hotspot/bin/python``),
into the ``activate`` scripts and into ``pyvenv.cfg``. Both ``make install DESTDIR=...``
and the Debian package (``debian/rules``) build the venv that way, so both call
:func:`relocate` afterwards. Standard library only: ``debian/rules`` runs it with
Debian's ``python3`` from the source tree::

    python3 -m gateway.ops.venv STAGE/opt/perpuseru-hotspot /opt/perpuseru-hotspot
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["relocate", "main"]


def relocate(venv: Path, final: str) -> list[Path]:
    """Replace ``venv``'s own path with ``final`` in its scripts and ``pyvenv.cfg``; return the files changed.

    Only ``bin/`` (scripts, ``activate*``) and ``pyvenv.cfg`` name the venv's folder;
    binary files (``bin/python`` is a link to the system's) are left alone.
    """
    venv = venv.resolve()
    old = str(venv).encode()
    new = final.rstrip("/").encode()
    changed = []
    candidates = [venv / "pyvenv.cfg", *sorted((venv / "bin").iterdir())]
    for path in candidates:
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:1024] or old not in data:
            continue
        mode = path.stat().st_mode
        path.write_bytes(data.replace(old, new))
        path.chmod(mode)
        changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    """``python3 -m gateway.ops.venv VENV FINAL``: print how many files were rewritten."""
    parser = argparse.ArgumentParser(prog="python3 -m gateway.ops.venv", description=__doc__.splitlines()[0])
    parser.add_argument("venv", type=Path, help="the venv as built (in the staging folder)")
    parser.add_argument("final", help="where it will run from, e.g. /opt/perpuseru-hotspot")
    args = parser.parse_args(argv)
    changed = relocate(args.venv, args.final)
    print(f"{args.venv}: {len(changed)} files now point at {args.final}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
