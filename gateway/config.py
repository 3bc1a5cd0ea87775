"""Load and validate ``hotspot.toml`` into frozen config objects.

One loader serves the gateway, the portal and ``hotspotctl config check``. It
reads the whole file, collects every problem (unknown keys, wrong types,
values out of range, references to plans that do not exist) and raises one
:class:`ConfigError` listing them, one line each, naming the file and the key::

    hotspot.toml: plans.harian.down: "10 mbps" is not a rate; use e.g. "10mbit"

Relative paths in the file are resolved against the file's own folder, so a
config and its branding files can travel together.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.units import parse_duration, parse_rate, parse_size

__all__ = [
    "DEFAULT_PATH",
    "SUPPORTED_LANGUAGES",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "Plan",
    "config_path",
    "load",
    "loads",
]

DEFAULT_PATH = Path("/etc/hotspot/hotspot.toml")
SUPPORTED_LANGUAGES = ("id", "en")

_IFNAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9-]{1,63}$")


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a config file: the dotted key and what is wrong."""

    key: str
    message: str


class ConfigError(Exception):
    """The config file cannot be used; ``problems`` says why, one per key."""

    def __init__(self, path: str | os.PathLike[str], problems: list[ConfigProblem]):
        self.path = str(path)
        self.problems = problems
        super().__init__(self.lines()[0] if problems else self.path)

    def lines(self) -> list[str]:
        """Return one ``file: key: message`` line per problem."""
        return [
            f"{self.path}: {p.key}: {p.message}" if p.key else f"{self.path}: {p.message}"
            for p in self.problems
        ]

    def __str__(self) -> str:
        return "\n".join(self.lines())


# ---------------------------------------------------------------------------
# Config objects. Durations are seconds, rates bits/s, sizes bytes.


@dataclass(frozen=True)
class Library:
    id: str
    name: str
    location: str
    timezone: str  # IANA name; days in reports and "one free session a day" follow it
    opening_hours: Mapping[str, str]
    terms: Mapping[str, str]
    branding_dir: Path


@dataclass(frozen=True)
class Network:
    lan_interface: str
    wan_interface: str
    lan_address: ipaddress.IPv4Interface
    admin_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    ssh_port: int
    netns: str  # namespace holding the router's interfaces; "" = this one (the lab sets it)

    @property
    def router_ip(self) -> ipaddress.IPv4Address:
        return self.lan_address.ip

    @property
    def lan_network(self) -> ipaddress.IPv4Network:
        return self.lan_address.network


@dataclass(frozen=True)
class Dhcp:
    range_start: ipaddress.IPv4Address
    range_end: ipaddress.IPv4Address
    lease_time: int
    dns_upstream: tuple[str, ...]


@dataclass(frozen=True)
class Uplink:
    down: int
    up: int
    headroom: float  # share of the line rate the shaper hands out, so queues stay on the router


@dataclass(frozen=True)
class Portal:
    address: ipaddress.IPv4Address
    port: int
    url: str  # what visitors and DHCP option 114 are pointed at
    tls_cert: Path | None
    tls_key: Path | None
    tls_port: int
    secret_key_file: Path
    languages: tuple[str, ...]
    default_language: str
    free_plan: str  # "" = no free button
    free_per_day: int
    survey: bool
    max_failures: int
    lockout: int

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/captive"


@dataclass(frozen=True)
class Gateway:
    reconcile_interval: int
    idle_timeout: int
    accounting_interval: int
    ack_timeout: float


@dataclass(frozen=True)
class Paths:
    state_dir: Path
    log_dir: Path


@dataclass(frozen=True)
class SessionLog:
    retention_days: int


@dataclass(frozen=True)
class WalledGarden:
    hosts: tuple[str, ...]
    networks: tuple[ipaddress.IPv4Network, ...]


@dataclass(frozen=True)
class Desk:
    session_lifetime: int
    max_failures: int
    lockout: int
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()  # () = from anywhere


@dataclass(frozen=True)
class Metrics:
    listen: str  # host:port of the admin-side /metrics endpoint; "" = off


@dataclass(frozen=True)
class Plan:
    name: str
    label: Mapping[str, str]
    duration: int  # seconds online, counted from first use
    validity: int  # how long an unused voucher stays valid after issue
    quota: int | None  # bytes up+down; None = no quota
    down: int
    up: int
    weight: float
    max_devices: int
    multi_day: bool  # may the voucher's remaining time be used again on another day

    def label_for(self, language: str) -> str:
        """Return the plan's label in ``language``, else in any language it has."""
        return self.label.get(language) or next(iter(self.label.values()), self.name)


@dataclass(frozen=True)
class Config:
    path: Path
    library: Library
    network: Network
    dhcp: Dhcp
    uplink: Uplink
    portal: Portal
    gateway: Gateway
    redis_url: str
    paths: Paths
    session_log: SessionLog
    walled_garden: WalledGarden
    desk: Desk
    metrics: Metrics
    plans: Mapping[str, Plan] = field(default_factory=dict)


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
            for extra in sorted(set(node) - known):
                close = _closest(extra, known)
                hint = f'; did you mean "{close}"?' if close else ""
                self.problem(f"{key}.{extra}", f"unknown key{hint}")
        return node

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
    import difflib

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
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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


# ---------------------------------------------------------------------------
# Sections


def _library(r: _Reader) -> Library:
    t = r.table("library", {"id", "name", "location", "timezone", "opening_hours", "terms", "branding_dir"})
    return Library(
        id=r.get(t, "library.id", _slug),
        name=r.get(t, "library.name", _nonempty),
        location=r.get(t, "library.location", _str, ""),
        timezone=r.get(t, "library.timezone", _timezone, "Asia/Jakarta"),
        opening_hours=r.get(t, "library.opening_hours", _text, {}),
        terms=r.get(t, "library.terms", _text, {}),
        branding_dir=r.resolve(r.get(t, "library.branding_dir", _str, "/etc/hotspot/branding")),
    )


def _network_section(r: _Reader) -> Network:
    t = r.table(
        "network",
        {"lan_interface", "wan_interface", "lan_address", "admin_networks", "ssh_port", "netns"},
    )
    net = Network(
        lan_interface=r.get(t, "network.lan_interface", _ifname),
        wan_interface=r.get(t, "network.wan_interface", _ifname),
        lan_address=r.get(t, "network.lan_address", _ipv4_interface),
        admin_networks=r.get(t, "network.admin_networks", _list_of(_network), ()),
        ssh_port=r.get(t, "network.ssh_port", _int(1, 65535), 22),
        netns=r.get(t, "network.netns", _str, ""),
    )
    if net.lan_interface is not _BAD and net.lan_interface == net.wan_interface:
        r.problem("network.wan_interface", "must differ from network.lan_interface")
    return net


def _dhcp(r: _Reader, network: Network) -> Dhcp:
    t = r.table("dhcp", {"range_start", "range_end", "lease_time", "dns_upstream"})
    lan = network.lan_address if network.lan_address is not _BAD else None
    hosts = list(lan.network.hosts()) if lan else []
    default_start = hosts[99] if len(hosts) > 200 else (hosts[1] if len(hosts) > 2 else _BAD)
    default_end = hosts[-2] if len(hosts) > 2 else _BAD
    dhcp = Dhcp(
        range_start=r.get(t, "dhcp.range_start", _ipv4, default_start),
        range_end=r.get(t, "dhcp.range_end", _ipv4, default_end),
        lease_time=r.get(t, "dhcp.lease_time", parse_duration, 2 * 3600),
        dns_upstream=r.get(t, "dhcp.dns_upstream", _list_of(_ipv4), ()),
    )
    if lan:
        for key in ("range_start", "range_end"):
            value = getattr(dhcp, key)
            if value is not _BAD and value not in lan.network:
                r.problem(f"dhcp.{key}", f"{value} is outside the LAN {lan.network}")
            elif value is not _BAD and value == lan.ip:
                r.problem(f"dhcp.{key}", f"{value} is the router's own address")
        if _BAD not in (dhcp.range_start, dhcp.range_end) and dhcp.range_start > dhcp.range_end:
            r.problem("dhcp.range_end", "must not be before dhcp.range_start")
    return dhcp


def _uplink(r: _Reader) -> Uplink:
    t = r.table("uplink", {"down", "up", "headroom"})
    return Uplink(
        down=r.get(t, "uplink.down", parse_rate),
        up=r.get(t, "uplink.up", parse_rate),
        headroom=r.get(t, "uplink.headroom", _float(0.5, 1.0), 0.95),
    )


def _portal(r: _Reader, network: Network, state_dir: Path | object) -> Portal:
    t = r.table(
        "portal",
        {
            "address", "port", "url", "tls_cert", "tls_key", "tls_port", "secret_key_file",
            "languages", "default_language", "free_plan", "free_per_day", "survey",
            "max_failures", "lockout",
        },
    )  # fmt: skip
    router = network.lan_address.ip if network.lan_address is not _BAD else None
    address = r.get(t, "portal.address", _ipv4, router if router else _BAD)
    port = r.get(t, "portal.port", _int(1, 65535), 8080)
    default_url = f"http://{address}:{port}" if _BAD not in (address, port) else ""
    cert = r.get(t, "portal.tls_cert", _str, "")
    key = r.get(t, "portal.tls_key", _str, "")
    if bool(cert) != bool(key):
        r.problem("portal.tls_key" if cert else "portal.tls_cert", "tls_cert and tls_key go together")
    secret = r.get(t, "portal.secret_key_file", _str, "")
    if not secret and isinstance(state_dir, Path):
        secret_path = state_dir / "secret_key"
    else:
        secret_path = r.resolve(secret)
    languages = r.get(t, "portal.languages", _list_of(_language), SUPPORTED_LANGUAGES)
    default_language = r.get(t, "portal.default_language", _language, "id")
    if languages is not _BAD and default_language is not _BAD and default_language not in languages:
        r.problem("portal.default_language", f'"{default_language}" is not in portal.languages')
    if languages is not _BAD and not languages:
        r.problem("portal.languages", "needs at least one language")
    return Portal(
        address=address,
        port=port,
        url=r.get(t, "portal.url", _url, default_url),
        tls_cert=r.resolve(cert) if isinstance(cert, str) and cert else None,
        tls_key=r.resolve(key) if isinstance(key, str) and key else None,
        tls_port=r.get(t, "portal.tls_port", _int(1, 65535), 8443),
        secret_key_file=secret_path,
        languages=languages,
        default_language=default_language,
        free_plan=r.get(t, "portal.free_plan", _str, ""),
        free_per_day=r.get(t, "portal.free_per_day", _int(1, 100), 1),
        survey=r.get(t, "portal.survey", _bool, True),
        max_failures=r.get(t, "portal.max_failures", _int(1, 1000), 5),
        lockout=r.get(t, "portal.lockout", parse_duration, 60),
    )


def _gateway(r: _Reader) -> Gateway:
    t = r.table("gateway", {"reconcile_interval", "idle_timeout", "accounting_interval", "ack_timeout"})
    gw = Gateway(
        reconcile_interval=r.get(t, "gateway.reconcile_interval", parse_duration, 5),
        idle_timeout=r.get(t, "gateway.idle_timeout", parse_duration, 15 * 60),
        accounting_interval=r.get(t, "gateway.accounting_interval", parse_duration, 5),
        ack_timeout=r.get(t, "gateway.ack_timeout", _float(0.1, 30.0), 2.0),
    )
    if gw.reconcile_interval is not _BAD and gw.reconcile_interval > 300:
        r.problem("gateway.reconcile_interval", "must be at most 5m so drift heals quickly")
    return gw


def _plans(r: _Reader) -> dict[str, Plan]:
    plans_table = r.table("plans")
    known = {
        "label", "duration", "validity", "quota", "down", "up", "weight", "max_devices", "multi_day",
    }  # fmt: skip
    plans: dict[str, Plan] = {}
    for name in plans_table:
        key = f"plans.{name}"
        if not _SLUG.match(name):
            r.problem(key, "plan names are lowercase letters, digits, '-' or '_'")
            continue
        t = r.table(key, known, parent=plans_table)
        quota = r.get(t, f"{key}.quota", parse_size, None)
        plans[name] = Plan(
            name=name,
            label=r.get(t, f"{key}.label", _text, {lang: name for lang in SUPPORTED_LANGUAGES}),
            duration=r.get(t, f"{key}.duration", parse_duration),
            validity=r.get(t, f"{key}.validity", parse_duration, 30 * 86400),
            quota=quota,
            down=r.get(t, f"{key}.down", parse_rate),
            up=r.get(t, f"{key}.up", parse_rate),
            weight=r.get(t, f"{key}.weight", _float(0.1, 100.0), 1.0),
            max_devices=r.get(t, f"{key}.max_devices", _int(1, 50), 1),
            multi_day=r.get(t, f"{key}.multi_day", _bool, False),
        )
    return plans


def _build(path: Path, data: dict[str, Any]) -> Config:
    r = _Reader(path, data)
    sections = {
        "library", "network", "dhcp", "uplink", "portal", "gateway", "redis", "paths",
        "session_log", "walled_garden", "desk", "metrics", "plans",
    }  # fmt: skip
    for extra in sorted(set(data) - sections):
        close = _closest(extra, sections)
        r.problem(extra, "unknown section" + (f'; did you mean "{close}"?' if close else ""))

    paths_t = r.table("paths", {"state_dir", "log_dir"})
    state = r.get(paths_t, "paths.state_dir", _str, "/var/lib/hotspot")
    log = r.get(paths_t, "paths.log_dir", _str, "/var/log/hotspot")
    paths = Paths(
        state_dir=r.resolve(state),
        log_dir=r.resolve(log),
    )
    library = _library(r)
    network = _network_section(r)
    dhcp = _dhcp(r, network)
    uplink = _uplink(r)
    portal = _portal(r, network, paths.state_dir)
    gateway = _gateway(r)

    redis_t = r.table("redis", {"url"})
    redis_url = r.get(redis_t, "redis.url", _str, "redis://127.0.0.1:6379/0")
    if isinstance(redis_url, str) and not re.match(r"^(redis|rediss|unix)://", redis_url):
        r.problem("redis.url", f'"{redis_url}" must start with redis://, rediss:// or unix://')
    if isinstance(redis_url, str) and redis_url.startswith("unix://"):
        # unix:// paths are resolved like every other path in this file
        redis_url = "unix://" + str(r.resolve(redis_url[len("unix://") :]))

    log_t = r.table("session_log", {"retention_days"})
    session_log = SessionLog(retention_days=r.get(log_t, "session_log.retention_days", _int(1, 3650), 365))
    wg_t = r.table("walled_garden", {"hosts", "networks"})
    walled = WalledGarden(
        hosts=r.get(wg_t, "walled_garden.hosts", _list_of(_hostname), ()),
        networks=r.get(wg_t, "walled_garden.networks", _list_of(_ipv4_network), ()),
    )
    desk_t = r.table("desk", {"session_lifetime", "max_failures", "lockout", "networks"})
    desk = Desk(
        session_lifetime=r.get(desk_t, "desk.session_lifetime", parse_duration, 8 * 3600),
        max_failures=r.get(desk_t, "desk.max_failures", _int(1, 100), 5),
        lockout=r.get(desk_t, "desk.lockout", parse_duration, 300),
        networks=r.get(desk_t, "desk.networks", _list_of(_network), ()),
    )
    metrics_t = r.table("metrics", {"listen"})
    metrics = Metrics(listen=r.get(metrics_t, "metrics.listen", _listen, "127.0.0.1:9110"))
    if isinstance(metrics.listen, str) and metrics.listen and network.lan_address is not _BAD:
        host = metrics.listen.rsplit(":", 1)[0].strip("[]")
        if ipaddress.ip_address(host) == network.lan_address.ip:
            r.problem(
                "metrics.listen",
                f"{host} is the LAN side, where visitors are; use 127.0.0.1, or the WAN or VPN address",
            )
    plans = _plans(r)

    if isinstance(portal.free_plan, str) and portal.free_plan and portal.free_plan not in plans:
        r.problem("portal.free_plan", f'no plan named "{portal.free_plan}" in [plans]')

    if r.problems:
        raise ConfigError(path, r.problems)
    return Config(
        path=path,
        library=library,
        network=network,
        dhcp=dhcp,
        uplink=uplink,
        portal=portal,
        gateway=gateway,
        redis_url=redis_url,
        paths=paths,
        session_log=session_log,
        walled_garden=walled,
        desk=desk,
        metrics=metrics,
        plans=plans,
    )


def loads(text: str, path: str | os.PathLike[str] = "hotspot.toml") -> Config:
    """Return the config parsed from TOML ``text``; ``path`` names it in errors."""
    path = Path(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(path, [ConfigProblem("", f"not valid TOML: {err}")]) from None
    return _build(path, data)


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
