"""The HQ page's settings, from the environment (a systemd ``EnvironmentFile`` at a real HQ).

==============================  =======================================  ===========================
variable                        meaning                                  default
==============================  =======================================  ===========================
``HOTSPOT_HQ_DB``               HQ's database (libpq conninfo)            (required)
``HOTSPOT_HQ_STAFF``            the staff accounts file                  ``/etc/hotspot-hq/staff``
``HOTSPOT_HQ_SECRET_FILE``      the cookie-signing key (made if missing)  ``/var/lib/hotspot-hq/secret``
``HOTSPOT_HQ_TIMEZONE``         where days and months begin               ``Asia/Jakarta``
``HOTSPOT_HQ_SECURE_COOKIES``   ``0`` only for plain HTTP on loopback     ``1``
``HOTSPOT_HQ_SESSION_HOURS``    how long a sign-in lasts                  ``8``
==============================  =======================================  ===========================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["LANGUAGES", "Settings"]

LANGUAGES = ("id", "en")  # Bahasa Indonesia first: the default


@dataclass(frozen=True)
class Settings:
    """What the HQ page needs to run (see the module doc for the environment variables)."""

    db: str
    staff_file: Path
    secret_file: Path
    timezone: str = "Asia/Jakarta"
    secure_cookies: bool = True
    session_hours: float = 8.0
    max_failures: int = 5  # wrong passwords per account or address within ``window``
    window: int = 900
    lockout: int = 300

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Return the settings from ``env`` (default: the process environment); raise ValueError
        with a clear message when one is missing or wrong."""
        env = os.environ if env is None else env
        db = env.get("HOTSPOT_HQ_DB", "").strip()
        if not db:
            raise ValueError("HOTSPOT_HQ_DB is not set (HQ's database: host=/run/postgresql dbname=radius)")
        timezone = env.get("HOTSPOT_HQ_TIMEZONE", "Asia/Jakarta")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f'HOTSPOT_HQ_TIMEZONE: "{timezone}" is not a time zone') from None
        try:
            hours = float(env.get("HOTSPOT_HQ_SESSION_HOURS", "8"))
        except ValueError:
            raise ValueError("HOTSPOT_HQ_SESSION_HOURS must be a number of hours") from None
        if not 0.1 <= hours <= 24 * 7:
            raise ValueError("HOTSPOT_HQ_SESSION_HOURS must be between 0.1 and 168")
        return cls(
            db=db,
            staff_file=Path(env.get("HOTSPOT_HQ_STAFF", "/etc/hotspot-hq/staff")),
            secret_file=Path(env.get("HOTSPOT_HQ_SECRET_FILE", "/var/lib/hotspot-hq/secret")),
            timezone=timezone,
            secure_cookies=env.get("HOTSPOT_HQ_SECURE_COOKIES", "1") not in ("0", "no", "false", "off"),
            session_hours=hours,
        )
