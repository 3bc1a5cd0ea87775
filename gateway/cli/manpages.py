"""Write the man pages ``hotspotctl(8)`` and ``hotspot.toml(5)`` from the code.

``hotspotctl(8)`` walks the click command tree (every group, command, argument and
option with its help text), so a new option is documented the day it is added.
``hotspot.toml(5)`` is built from the commented example config
(``docs/hotspot.example.toml``), the file ``tests/config`` proves the config reader
accepts with every key at its default: each ``[section]``, each key, its default and
the comment above it. ``debian/rules`` runs it with the package's venv::

    python -m gateway.cli.manpages --example docs/hotspot.example.toml --out DIR
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import date
from pathlib import Path

import click

from gateway import __version__

__all__ = ["hotspotctl_page", "config_page", "main"]

SOURCE = f"perpuseru-hotspot {__version__}"


def esc(text: str) -> str:
    """Escape ``text`` for groff: backslashes, minus signs, non-ASCII, a leading dot or quote."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    text = "".join(c if ord(c) < 128 else f"\\[u{ord(c):04X}]" for c in text)  # groff reads ASCII
    return "\n".join("\\&" + line if line[:1] in (".", "'") else line for line in text.splitlines())


def _header(name: str, section: int, title: str, when: date) -> list[str]:
    return [
        f'.TH "{name.upper()}" "{section}" "{when.isoformat()}" "{SOURCE}" "{title}"',
        ".SH NAME",
        f"{esc(name)} \\- {esc(title)}",
    ]


def _paragraphs(text: str) -> list[str]:
    """Turn a docstring into groff paragraphs (blank lines separate them)."""
    out = []
    for block in re.split(r"\n\s*\n", (text or "").strip()):
        lines = [line.strip() for line in block.splitlines() if line.strip() and line.strip() != "\b"]
        if lines:
            out += [".PP", esc(" ".join(lines))]
    return out


def _walk(command: click.Command, ctx: click.Context) -> list[tuple[click.Command, click.Context]]:
    found = [(command, ctx)]
    if isinstance(command, click.Group):
        for name in sorted(command.list_commands(ctx)):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            found += _walk(sub, click.Context(sub, info_name=name, parent=ctx))
    return found


def hotspotctl_page(cli: click.Group, when: date) -> str:
    """Return ``hotspotctl(8)`` in groff, from the click group ``cli``."""
    root = click.Context(cli, info_name="hotspotctl")
    lines = _header("hotspotctl", 8, "run the PerpuSeru library hotspot", when)
    lines += [".SH SYNOPSIS", "\\fBhotspotctl\\fR [\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]...",
              ".SH DESCRIPTION"]  # fmt: skip
    lines += _paragraphs(cli.help or "")
    lines += _paragraphs(
        "The admin's tool on the router (over SSH): clients, vouchers, plans, librarian accounts, "
        "the session log, reports, the config and repairs. Every listing takes --json for scripts."
    )
    lines += [".SH OPTIONS"] + _options(cli, root)
    lines += [".SH COMMANDS"]
    for command, ctx in _walk(cli, root)[1:]:
        path = ctx.command_path
        usage = " ".join(p for p in command.collect_usage_pieces(ctx))
        lines += [".SS " + esc(path), f"\\fB{esc(path)}\\fR {esc(usage)}"]
        lines += _paragraphs(command.help or command.short_help or "")
        if isinstance(command, click.Group):
            continue
        lines += _options(command, ctx)
    import gateway.cli as cli_module  # the exit codes are written in the package's docstring

    lines += [".SH EXIT STATUS"] + _paragraphs(cli_module.__doc__.split("\n\n", 1)[1])
    lines += [
        ".SH ENVIRONMENT", ".TP", "\\fBHOTSPOT_CONFIG\\fR",
        "The config file when \\-\\-config is not given.",
        ".SH FILES", ".TP", "\\fI/etc/hotspot/hotspot.toml\\fR",
        "The configuration, see \\fBhotspot.toml\\fR(5).",
        ".TP", "\\fI/var/log/hotspot/\\fR", "The session logs (one JSON\\-lines file a day).",
        ".TP", "\\fI/var/lib/hotspot/\\fR", "State: the key that signs portal cookies.",
        ".SH SEE ALSO", "\\fBhotspot.toml\\fR(5), \\fBsystemctl\\fR(1), \\fBnft\\fR(8), \\fBtc\\fR(8)",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def _options(command: click.Command, ctx: click.Context) -> list[str]:
    out = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:  # an argument without help (click < 8.2 gives none for arguments)
            continue
        names, help_text = record
        out += [".TP", f"\\fB{esc(names)}\\fR", esc(help_text) or "\\&"]
    return out


SECTION = re.compile(r"^\[([A-Za-z0-9_.]+)\]\s*$")
KEY = re.compile(r"^([A-Za-z0-9_]+)\s*=\s*(.*)$")


def config_sections(example: str) -> list[tuple[str, list[str], list[tuple[str, str, list[str]]]]]:
    """Parse the commented example: [(section, its comment, [(key, default, comment)])].

    Only the first ``[plans.NAME]`` is kept (the others repeat its keys).
    """
    sections: list[tuple[str, list[str], list[tuple[str, str, list[str]]]]] = []
    comment: list[str] = []
    seen_plan = False
    skip = False
    for raw in example.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            comment.append(line.lstrip("#").strip())
            continue
        if not line:
            if not sections:
                comment = []  # the file's own header
            continue
        match = SECTION.match(line)
        if match:
            name = match.group(1)
            if name.startswith("plans."):
                skip = seen_plan
                seen_plan = True
                name = "plans.NAME"
            if not skip:
                sections.append((name, comment, []))
            comment = []
            continue
        match = KEY.match(line)
        if match and sections and not skip:
            sections[-1][2].append((match.group(1), match.group(2), comment))
        comment = []
    return sections


def config_page(example: str, when: date) -> str:
    """Return ``hotspot.toml(5)`` in groff, from the commented example config."""
    lines = _header("hotspot.toml", 5, "PerpuSeru Hotspot configuration file", when)
    lines += [".SH SYNOPSIS", "\\fI/etc/hotspot/hotspot.toml\\fR", ".SH DESCRIPTION"]
    lines += _paragraphs(
        "One TOML file configures a library's router: the gateway, the portal and hotspotctl read it. "
        "It is checked when loaded: an error names the file, the key and what is wrong, and a "
        "reload with a bad file keeps the running config. Check a change with "
        "hotspotctl config check before systemctl reload hotspot-gateway hotspot-portal."
    )
    lines += _paragraphs(
        'Units: rates in bits per second as tc writes them ("10mbit", "512kbit"), sizes in bytes '
        '("500MB", "2GB", "1GiB"), durations ("30s", "15m", "2h", "30d"). Relative paths are '
        "relative to the file's folder. Each key is shown with its default."
    )
    for name, about, keys in config_sections(example):
        lines += [".SH " + esc(f"[{name}]")]
        lines += _paragraphs(" ".join(about))
        for key, default, comment in keys:
            lines += [".TP", f"\\fB{esc(key)}\\fR = {esc(default)}", esc(" ".join(comment)) or "(see above)"]
    lines += [
        ".SH FILES", ".TP", "\\fI/etc/hotspot/hotspot.toml.example\\fR",
        "The commented example of the installed version, for comparison.",
        ".SH SEE ALSO", "\\fBhotspotctl\\fR(8)",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write ``hotspotctl.8`` and ``hotspot.toml.5`` into ``--out``."""
    parser = argparse.ArgumentParser(
        prog="python -m gateway.cli.manpages", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--example", type=Path, required=True, help="docs/hotspot.example.toml")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the pages into")
    parser.add_argument("--date", default="", help="YYYY-MM-DD on the pages [default: today]")
    args = parser.parse_args(argv)
    when = date.fromisoformat(args.date) if args.date else date.today()
    from gateway.cli import cli  # the whole command tree; only this command needs it

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "hotspotctl.8").write_text(hotspotctl_page(cli, when))
    (args.out / "hotspot.toml.5").write_text(config_page(args.example.read_text(), when))
    print(f"wrote {args.out / 'hotspotctl.8'}, {args.out / 'hotspot.toml.5'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
