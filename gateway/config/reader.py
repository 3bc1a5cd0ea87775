"""The typed reader of a parsed TOML document and the small value parsers it applies.

Every lookup goes through :class:`_Reader`, which records a :class:`ConfigProblem`
instead of raising, so one load reports every problem at once. Each parser raises
``ValueError`` with a message meant for people. Private to :mod:`gateway.config`.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.config.records import SUPPORTED_LANGUAGES, ConfigProblem

_IFNAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9-]{1,63}$")


# ---------------------------------------------------------------------------
# The reader: every lookup goes through one place that records problems.

_REQUIRED = object()
_BAD = object()


class _Reader:
    def __init__(self, path: Path, data: dict[str, Any]):
        self.path = path
        self.data = data
        self.problems: list[ConfigProblem] = []

    def problem(self, key: str, message: str) -> object:
        self.problems.append(ConfigProblem(key, message))
        return _BAD

    def table(self, key: str, known: set[str] | None = None, parent: Mapping | None = None) -> dict:
        node = (parent if parent is not None else self.data).get(key.rsplit(".", 1)[-1], {})
        if not isinstance(node, dict):
            self.problem(key, f"expected a table ([{key}]), got {_type_name(node)}")
            return {}
        if known is not None:
            self.known_keys(key, node, known)
        return node

    def known_keys(self, key: str, node: Mapping, known: set[str]) -> bool:
        """Report each key of table ``node`` (at ``key``) not in ``known``; return whether none was."""
        for extra in sorted(set(node) - known):
            close = _closest(extra, known)
            hint = f'; did you mean "{close}"?' if close else ""
            self.problem(f"{key}.{extra}", f"unknown key{hint}")
        return set(node) <= known

    def get(
        self,
        table: Mapping,
        key: str,
        parse: Callable[[Any], Any],
        default: Any = _REQUIRED,
    ) -> Any:
        name = key.rsplit(".", 1)[-1]
        if name not in table:
            if default is _REQUIRED:
                return self.problem(key, "is required")
            return default
        try:
            return parse(table[name])
        except ValueError as err:
            return self.problem(key, str(err))

    def resolve(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value  # already reported as a problem
        path = Path(value)
        return path if path.is_absolute() else (self.path.parent / path).resolve()


def _type_name(value: object) -> str:
    return {dict: "a table", list: "a list", str: "a string", bool: "true/false"}.get(
        type(value), type(value).__name__
    )


def _closest(word: str, choices: set[str]) -> str | None:
    found = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.7)
    return found[0] if found else None


# Small value parsers. Each raises ValueError with a message meant for people.


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_type_name(value)}")
    return value


def _nonempty(value: Any) -> str:
    text = _str(value).strip()
    if not text:
        raise ValueError("must not be empty")
    return text


def _slug(value: Any) -> str:
    text = _str(value)
    if not _SLUG.match(text):
        raise ValueError(f'"{text}" must be lowercase letters, digits, "-" or "_" (e.g. "sukabumi")')
    return text


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {_type_name(value)}")
    return value


def _int(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected a whole number, got {_type_name(value)}")
        if not low <= value <= high:
            raise ValueError(f"{value} is out of range ({low} to {high})")
        return value

    return parse


def _float(low: float, high: float) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected a number, got {_type_name(value)}")
        if not low <= value <= high:
            raise ValueError(f"{value} is out of range ({low} to {high})")
        return float(value)

    return parse


def _ifname(value: Any) -> str:
    text = _str(value)
    if not _IFNAME.match(text):
        raise ValueError(f'"{text}" is not an interface name (1-15 letters, digits, "-", "_", ".")')
    return text


def _ipv4(value: Any) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(_str(value))
    except ipaddress.AddressValueError:
        raise ValueError(f'"{value}" is not an IPv4 address (e.g. "10.42.0.1")') from None


def _ipv4_interface(value: Any) -> ipaddress.IPv4Interface:
    text = _str(value)
    try:
        iface = ipaddress.IPv4Interface(text)
    except ValueError:
        raise ValueError(f'"{text}" is not an address with prefix (e.g. "10.42.0.1/24")') from None
    if "/" not in text or iface.network.prefixlen > 30:
        raise ValueError(f'"{text}" needs a prefix of /30 or wider (e.g. "10.42.0.1/24")')
    if iface.ip in (iface.network.network_address, iface.network.broadcast_address):
        raise ValueError(f'"{text}" is not a host address in its subnet')
    return iface


def _network(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(_str(value), strict=False)
    except ValueError:
        raise ValueError(f'"{value}" is not a network (e.g. "10.42.0.0/24")') from None


def _ipv4_network(value: Any) -> ipaddress.IPv4Network:
    net = _network(value)
    if net.version != 4:
        raise ValueError(f'"{value}" is not an IPv4 network')
    return net


def _list_of(item: Callable[[Any], Any]) -> Callable[[Any], tuple]:
    def parse(value: Any) -> tuple:
        if not isinstance(value, list):
            raise ValueError(f"expected a list, got {_type_name(value)}")
        out = []
        for i, element in enumerate(value):
            try:
                out.append(item(element))
            except ValueError as err:
                raise ValueError(f"item {i + 1}: {err}") from None
        return tuple(out)

    return parse


_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def _mac(value: Any) -> str:
    text = _str(value).strip().lower().replace("-", ":")
    if not _MAC.match(text):
        raise ValueError(f'"{value}" is not a MAC address (e.g. "02:00:00:00:00:06")')
    return text


def _hostname(value: Any) -> str:
    text = _str(value).strip().lower().rstrip(".")
    if not _HOSTNAME.match(text):
        raise ValueError(f'"{value}" is not a host name (e.g. "perpuseru.id")')
    return text


def _url(value: Any) -> str:
    text = _str(value).rstrip("/")
    if not re.match(r"^https?://[^/\s?#]+$", text):
        raise ValueError(f'"{value}" must be a base URL like "http://10.42.0.1:8080"')
    return text


def _text(value: Any) -> dict[str, str]:
    """A visitor-facing text: one string, or one string per language."""
    if isinstance(value, str):
        return {lang: value for lang in SUPPORTED_LANGUAGES}
    if isinstance(value, dict):
        bad = sorted(set(value) - set(SUPPORTED_LANGUAGES))
        if bad:
            raise ValueError(f'unknown language "{bad[0]}" (known: {", ".join(SUPPORTED_LANGUAGES)})')
        if not all(isinstance(v, str) for v in value.values()):
            raise ValueError("each language's text must be a string")
        return dict(value)
    raise ValueError(
        f'expected a string or a table like {{ id = "...", en = "..." }}, got {_type_name(value)}'
    )


def _timezone(value: Any) -> str:
    text = _str(value)
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f'"{text}" is not a time zone (Indonesia: "Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura")'
        ) from None
    return text


def _listen(value: Any) -> str:
    """``""`` (off) or ``host:port`` with an IP address host (``[::1]:9110`` for IPv6)."""
    text = _str(value).strip()
    if not text:
        return ""
    match = re.match(r"^\[?([0-9A-Fa-f.:]+)\]?:(\d{1,5})$", text)
    try:
        ipaddress.ip_address(match.group(1)) if match else None
    except ValueError:
        match = None
    if not match or not 0 <= int(match.group(2)) < 65536:  # 0: any free port (tests)
        raise ValueError(f'"{text}" is not address:port (e.g. "127.0.0.1:9110"), or "" for off')
    return text


def _language(value: Any) -> str:
    text = _str(value)
    if text not in SUPPORTED_LANGUAGES:
        raise ValueError(f'"{text}" is not a supported language ({", ".join(SUPPORTED_LANGUAGES)})')
    return text


def _ssid(value: Any) -> str:
    """A Wi-Fi network name (SSID): up to 32 bytes of printable text; "" = none."""
    text = _str(value)
    if len(text.encode()) > 32 or not text.isprintable():
        raise ValueError(f'"{value}" is not a Wi-Fi network name (printable, at most 32 bytes)')
    return text


def _local_name(value: Any) -> str:
    """The portal's short local name served by the router's DNS ("wifi.perpus"); "" = none."""
    text = _str(value).strip().lower().rstrip(".")
    if not text:
        return ""
    hint = f'"{value}" is not a local name like "wifi.perpus" (letters, digits and "-", with a dot)'
    if not _HOSTNAME.match(text) or "." not in text or "_" in text or text.replace(".", "").isdigit():
        raise ValueError(hint)
    if text.endswith(".local"):
        raise ValueError(f'"{value}": ".local" belongs to mDNS; phones would not ask the router for it')
    return text
