"""What RADIUS attributes mean for a session, both ways (pure: no sockets, no Redis).

- :func:`grant_from_reply`: an Access-Accept's attributes -> the session's limits, with
  bounds. A reply outside them (a negative timeout arrives as a huge unsigned number,
  100 Gbit/s, a quota of a petabyte) raises :class:`AbsurdReply`: nobody is let in on it.
- :data:`TERMINATE_CAUSE`: our end reasons as Acct-Terminate-Cause (RFC 2866 5.10).
- :func:`device_id`: what is sent as Calling-Station-Id (raw MAC or a per-library keyed hash).
- :func:`acct_attributes`: the Accounting-Request attributes of a queued record.
- :func:`session_class`: the Class a local session's accounting carries (``voucher:<plan>``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = [
    "DEFAULT_DOWN",
    "DEFAULT_SESSION",
    "DEFAULT_UP",
    "AbsurdReply",
    "Grant",
    "TERMINATE_CAUSE",
    "acct_attributes",
    "device_id",
    "dictionary_path",
    "grant_from_reply",
    "session_class",
    "split_octets",
    "survey_attributes",
]

# What a central account gets when HQ's reply does not say (HQ normally does).
DEFAULT_SESSION = 4 * 3600
DEFAULT_DOWN = 2_000_000
DEFAULT_UP = 1_000_000

# Bounds of what we accept from HQ; outside them the whole reply is refused.
SESSION_BOUNDS = (60, 7 * 86400)  # 1 minute .. 1 week
IDLE_BOUNDS = (60, 86400)
RATE_BOUNDS = (16_000, 1_000_000_000)  # 16 kbit/s .. 1 Gbit/s
QUOTA_BOUNDS = (1_000_000, 1_000_000_000_000)  # 1 MB .. 1 TB
INTERIM_BOUNDS = (60, 86400)
MAX_MESSAGE = 253

# Our end reasons (gateway.model.sessions.END_REASONS, plus "admin" from HQ) -> RFC 2866.
TERMINATE_CAUSE: dict[str, str] = {
    "logout": "User-Request",  # the visitor pressed "log out"
    "expired": "Session-Timeout",
    "idle": "Idle-Timeout",
    "quota": "Session-Timeout",  # its data limit; CoovaChilli reports it the same way
    "kicked": "Admin-Reset",  # a librarian ended it
    "revoked": "Admin-Reset",  # its voucher was cancelled
    "admin": "Admin-Reset",  # HQ's Disconnect-Request
    "replaced": "NAS-Request",  # the device logged in again with another code
}
DEFAULT_CAUSE = "NAS-Request"


class AbsurdReply(Exception):
    """An Access-Accept carried a value outside our bounds; the login is refused."""

    def __init__(self, attribute: str, value: Any):
        self.attribute = attribute
        self.value = value
        super().__init__(f"{attribute} = {value!r} is outside what a session may get")


@dataclass(frozen=True)
class Grant:
    """What HQ grants one login: seconds, caps (bits/s), quota (bytes, 0 = none), message."""

    session_timeout: int
    idle_timeout: int  # 0 = the router's gateway.idle_timeout
    down: int
    up: int
    quota: int
    message: str
    interim_interval: int  # 0 = the router's radius.interim_interval


def dictionary_path() -> str:
    """Return the path of the dictionary shipped with the package (for pyrad)."""
    return str(resources.files("gateway.radius").joinpath("dictionary"))


def _one(attrs: Mapping[str, list], name: str) -> Any:
    values = attrs.get(name) or []
    return values[0] if values else None


def _bounded(attrs: Mapping[str, list], name: str, bounds: tuple[int, int], default: int) -> int:
    value = _one(attrs, name)
    if value is None:
        return default
    if not isinstance(value, int) or not bounds[0] <= value <= bounds[1]:
        raise AbsurdReply(name, value)
    return value


def grant_from_reply(attrs: Mapping[str, list]) -> Grant:
    """Return what an Access-Accept's attributes grant; raise :class:`AbsurdReply` if out of bounds."""
    quota = _one(attrs, "ChilliSpot-Max-Total-Octets")
    giga = _one(attrs, "ChilliSpot-Max-Total-Gigawords")
    total = None
    if quota is not None or giga is not None:
        if not isinstance(quota or 0, int) or not isinstance(giga or 0, int):
            raise AbsurdReply("ChilliSpot-Max-Total-Octets", quota)
        total = ((giga or 0) << 32) + (quota or 0)
        if not QUOTA_BOUNDS[0] <= total <= QUOTA_BOUNDS[1]:
            raise AbsurdReply("ChilliSpot-Max-Total-Octets", total)
    message = _one(attrs, "Reply-Message") or ""
    if not isinstance(message, str):
        message = ""
    # shown to the visitor: printable text only, bounded (the template escapes HTML)
    message = "".join(ch for ch in message if ch.isprintable())[:MAX_MESSAGE]
    return Grant(
        session_timeout=_bounded(attrs, "Session-Timeout", SESSION_BOUNDS, DEFAULT_SESSION),
        idle_timeout=_bounded(attrs, "Idle-Timeout", IDLE_BOUNDS, 0),
        down=_bounded(attrs, "WISPr-Bandwidth-Max-Down", RATE_BOUNDS, DEFAULT_DOWN),
        up=_bounded(attrs, "WISPr-Bandwidth-Max-Up", RATE_BOUNDS, DEFAULT_UP),
        quota=total or 0,
        message=message,
        interim_interval=_bounded(attrs, "Acct-Interim-Interval", INTERIM_BOUNDS, 0),
    )


def device_id(mac: str, *, mode: str, key: bytes) -> str:
    """Return the Calling-Station-Id for ``mac``: the MAC itself, or a keyed hash of it.

    ``mode`` "mac" sends the MAC as ``AA-BB-CC-DD-EE-FF`` (RFC 3580 3.21); "hash" sends
    32 hex digits of HMAC-SHA256 keyed with the library's own secret, so HQ can count one
    device's sessions in one library but cannot learn its MAC or follow it across libraries.
    """
    if mode == "mac":
        return mac.upper().replace(":", "-")
    return hmac.new(key, b"radius-device-id:" + mac.lower().encode(), hashlib.sha256).hexdigest()[:32]


def split_octets(total: int) -> tuple[int, int]:
    """Return ``(octets, gigawords)``: the low 32 bits and the 2^32 multiples (RFC 2869 5.1)."""
    total = max(0, int(total))
    return total & 0xFFFFFFFF, total >> 32


def survey_attributes(record: Mapping[str, str], *, nas_identifier: str) -> dict[str, Any]:
    """Return the Accounting-Request of a queued survey count (a day's snapshot, no session)."""
    return {
        "Acct-Status-Type": "Interim-Update",
        "Acct-Session-Id": record["sid"],
        "NAS-Identifier": nas_identifier,
        "Event-Timestamp": int(float(record["time"])),
        "PerpuSeru-Survey-Day": record["day"],
        "PerpuSeru-Survey-Question": record["question"],
        "PerpuSeru-Survey-Answer": record["answer"],
        "PerpuSeru-Survey-Count": max(0, min(int(record["count"]), 0x7FFFFFFF)),
    }


def session_class(kind: str, plan: str) -> bytes:
    """Return the Class (RFC 2865 5.25) a local session's accounting carries: ``<kind>:<plan>``.

    A local session has no Access-Accept whose Class it could echo, so the router names
    what let the device in: ``voucher:harian`` (a local voucher of plan "harian"),
    ``free:gratis``, ``admin:...``. HQ stores it in ``radacct.class`` (the standard
    column) and counts vouchers used per plan from it. Printable ASCII, at most 253 bytes.
    """
    text = "".join(ch for ch in f"{kind}:{plan}" if ch.isascii() and ch.isprintable())
    return text.encode()[:MAX_MESSAGE]


def acct_attributes(
    record: Mapping[str, str], *, nas_identifier: str, calling_station: str, delay: int, nas_ip: str = ""
) -> dict[str, Any]:
    """Return the Accounting-Request attributes of one queued record (see ``accounting.outbox_record``).

    Router upload is the visitor's input (Acct-Input = bytes from the device), download
    its output, as a NAS sees them (RFC 2866 5.3/5.4).
    """
    status = record["status"]
    attrs: dict[str, Any] = {
        "Acct-Status-Type": status,
        "Acct-Session-Id": record["sid"],
        "User-Name": record.get("user") or record["sid"],
        "NAS-Identifier": nas_identifier,
        "NAS-Port-Type": "Wireless-802.11",
        "Calling-Station-Id": calling_station,
        "Event-Timestamp": int(float(record["time"])),
        "Acct-Delay-Time": max(0, min(int(delay), 0xFFFFFFFF)),
        "Acct-Authentic": "RADIUS" if record.get("kind") == "central" else "Local",
    }
    if nas_ip:
        attrs["NAS-IP-Address"] = nas_ip
    if record.get("ip"):
        attrs["Framed-IP-Address"] = record["ip"]
    if record.get("kind") and record.get("kind") != "central":
        attrs["Class"] = session_class(record["kind"], record.get("plan", ""))
    if status in ("Interim-Update", "Stop"):
        attrs["Acct-Session-Time"] = max(0, int(float(record.get("duration") or 0)))
        up_octets, up_giga = split_octets(int(record.get("bytes_up") or 0))
        down_octets, down_giga = split_octets(int(record.get("bytes_down") or 0))
        attrs["Acct-Input-Octets"] = up_octets
        attrs["Acct-Input-Gigawords"] = up_giga
        attrs["Acct-Output-Octets"] = down_octets
        attrs["Acct-Output-Gigawords"] = down_giga
    if status == "Stop":
        attrs["Acct-Terminate-Cause"] = TERMINATE_CAUSE.get(record.get("reason", ""), DEFAULT_CAUSE)
    return attrs
