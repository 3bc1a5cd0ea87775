"""Load and validate ``hotspot.toml`` into frozen config objects.

One loader serves the gateway, the portal and ``hotspotctl config check``. It
reads the whole file, collects every problem (unknown keys, wrong types,
values out of range, references to plans that do not exist) and raises one
:class:`ConfigError` listing them, one line each, naming the file and the key::

    hotspot.toml: plans.harian.down: "10 mbps" is not a rate; use e.g. "10mbit"

Relative paths in the file are resolved against the file's own folder, so a
config and its branding files can travel together.

The package:

- :mod:`~gateway.config.records`: the frozen records (``Config`` and its sections)
- :mod:`~gateway.config.reader`: the typed reader and the value parsers
- :mod:`~gateway.config.sections`: one builder per ``[section]``
- :mod:`~gateway.config.survey`: the program's survey questions and ``portal.survey``

Ground floor, pure apart from reading the file: it imports only the standard library and
:mod:`gateway.units`, and is imported by everyone (the portal, every wing, ``make install``
with the system python). Contract ``ground-floor``: it imports no wing.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from gateway.config.records import (
    DEFAULT_PATH,
    SUPPORTED_LANGUAGES,
    Config,
    ConfigError,
    ConfigProblem,
    Desk,
    Dhcp,
    Gateway,
    Library,
    Metrics,
    Network,
    Paths,
    Plan,
    Portal,
    Radius,
    RadiusServer,
    SessionLog,
    Survey,
    SurveyOption,
    SurveyQuestion,
    Uplink,
    WalledGarden,
)
from gateway.config.sections import build

__all__ = [
    "DEFAULT_PATH",
    "SUPPORTED_LANGUAGES",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "Desk",
    "Dhcp",
    "Gateway",
    "Library",
    "Metrics",
    "Network",
    "Paths",
    "Plan",
    "Portal",
    "Radius",
    "RadiusServer",
    "SessionLog",
    "Survey",
    "SurveyOption",
    "SurveyQuestion",
    "Uplink",
    "WalledGarden",
    "config_path",
    "load",
    "loads",
]


def loads(text: str, path: str | os.PathLike[str] = "hotspot.toml") -> Config:
    """Return the config parsed from TOML ``text``; ``path`` names it in errors."""
    path = Path(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(path, [ConfigProblem("", f"not valid TOML: {err}")]) from None
    return build(path, data)


def load(path: str | os.PathLike[str] | None = None) -> Config:
    """Return the config read from ``path`` (default: :func:`config_path`)."""
    path = Path(path) if path is not None else config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, [ConfigProblem("", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(path, [ConfigProblem("", f"cannot read it: {err}")]) from None
    return loads(text, path)


def config_path() -> Path:
    """Return the config file to use: ``$HOTSPOT_CONFIG`` or ``/etc/hotspot/hotspot.toml``."""
    env = os.environ.get("HOTSPOT_CONFIG")
    return Path(env) if env else DEFAULT_PATH
