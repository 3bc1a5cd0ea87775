"""The config as frozen records: what :func:`gateway.config.load` returns.

Durations are seconds, rates bits/s, sizes bytes. :class:`ConfigError` carries every
problem found in a file, one :class:`ConfigProblem` per key.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

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
]

DEFAULT_PATH = Path("/etc/hotspot/hotspot.toml")
SUPPORTED_LANGUAGES = ("id", "en")


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
    wifi_name: str = ""  # the Wi-Fi network (SSID) visitors join, printed on cards; "" = not printed


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
    lease_file: Path = Path("/var/lib/misc/dnsmasq.leases")  # dnsmasq's: pool, moves, host names
    online_lease_time: int = 2 * 3600  # lease for devices that logged in (dnsmasq dhcp-hostsdir)
    hosts_dir: Path | None = Path("/var/lib/hotspot-dhcp")  # that dhcp-hostsdir; None = everyone short
    per_device_per_minute: int = 6  # DHCP packets one MAC may send per minute (nftables)
    pool_low: float = 0.1  # warn (log, metric) when fewer than this share of the pool is free
    dns_before_login: int = 2_000  # DNS answer bytes/s per device that is not logged in
    dns_before_login_total: int = 32_000  # the same, all such devices together
    # fixed addresses by MAC (the desk PC): (mac, ip), served by dnsmasq and kept in the
    # gateway's online-lease files too, which dnsmasq reads before its own config
    reservations: tuple[tuple[str, ipaddress.IPv4Address], ...] = ()

    @property
    def pool_size(self) -> int:
        """Addresses in the DHCP range."""
        return int(self.range_end) - int(self.range_start) + 1


@dataclass(frozen=True)
class Uplink:
    down: int
    up: int
    headroom: float  # share of the line rate the shaper hands out, so queues stay on the router


@dataclass(frozen=True)
class SurveyOption:
    id: str
    text: Mapping[str, str]  # per language; {} for a built-in question's (the portal's catalog has it)


@dataclass(frozen=True)
class SurveyQuestion:
    id: str
    text: Mapping[str, str]  # per language; {} = one of the program's questions (gateway.config.survey)
    options: tuple[SurveyOption, ...]

    @property
    def builtin(self) -> bool:
        """Whether this is one of the program's questions (texts in the portal's catalogs)."""
        return not self.text

    @property
    def answers(self) -> tuple[str, ...]:
        """The ids of the answers, in the order shown."""
        return tuple(o.id for o in self.options)


@dataclass(frozen=True)
class Survey:
    """The portal's optional, anonymous questions (``portal.survey``)."""

    enabled: bool
    questions: tuple[SurveyQuestion, ...]

    @property
    def asked(self) -> tuple[SurveyQuestion, ...]:
        """The questions visitors are asked: none when the survey is off."""
        return self.questions if self.enabled else ()


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
    survey: Survey
    max_failures: int
    lockout: int
    max_failures_per_minute: int = 30  # wrong codes library-wide, whatever MAC or IP they come from
    free_per_hour: int = 20  # free sessions started library-wide per hour
    free_share: float = 0.25  # of the uplink, all free sessions together at most
    local_name: str = ""  # a short name the router's DNS answers with its address ("wifi.perpus")
    workers: int = 1  # gunicorn worker processes (gevent: each serves many connections)

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/captive"

    @property
    def tls(self) -> bool:
        """Whether a certificate is configured (then the portal also serves HTTPS, the desk only HTTPS)."""
        return bool(self.tls_cert and self.tls_key)

    @property
    def short_url(self) -> str:
        """The address people are told to type to come back (``http://wifi.perpus``), else ``url``."""
        return f"http://{self.local_name}" if self.local_name else self.url


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
    # who sees the desk; the loader's default is network.admin_networks plus loopback
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
class RadiusServer:
    host: ipaddress.IPv4Address
    auth_port: int
    acct_port: int


# the longest a visitor may wait for HQ on the splash: timeout x retries x servers
MAX_AUTH_WAIT = 10.0


@dataclass(frozen=True)
class Radius:
    """The program's headquarters (``[radius]``): central logins, accounting, RFC 5176."""

    servers: tuple[RadiusServer, ...]  # tried in order: the first that answers wins (failover)
    secret_file: Path  # the shared secret, one line; read when used (it is not in the config)
    nas_identifier: str  # NAS-Identifier; the library id unless set
    nas_ip: ipaddress.IPv4Address | None  # NAS-IP-Address to send; None = not sent
    timeout: float  # seconds to wait after each try
    retries: int  # tries per server
    interim_interval: int  # seconds between Interim-Updates of an online session
    device_id: str  # Calling-Station-Id: "hash" (per-library keyed hash) or "mac" (the raw MAC)
    dynauth_listen: str  # "ip:port" for Disconnect/CoA requests from HQ; "" = off
    dynauth_clients: tuple[ipaddress.IPv4Address, ...]  # who may send them (default: the servers)

    @property
    def auth_bound(self) -> float:
        """The longest a central login waits for HQ before it gives up (every server, every try)."""
        return self.timeout * self.retries * len(self.servers)


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
    radius: Radius | None = None  # None: no [radius] section, the library stands alone
