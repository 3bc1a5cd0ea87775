"""The section builders: one function per ``[section]`` of ``hotspot.toml``, and
:func:`build`, which reads them all and checks what spans sections.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.config.reader import (
    _BAD,
    _SLUG,
    _bool,
    _closest,
    _float,
    _hostname,
    _ifname,
    _int,
    _ipv4,
    _ipv4_interface,
    _ipv4_network,
    _language,
    _list_of,
    _listen,
    _local_name,
    _mac,
    _network,
    _nonempty,
    _Reader,
    _slug,
    _ssid,
    _str,
    _text,
    _timezone,
    _type_name,
    _url,
)
from gateway.config.records import (
    MAX_AUTH_WAIT,
    SUPPORTED_LANGUAGES,
    Config,
    ConfigError,
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
    Uplink,
    WalledGarden,
)
from gateway.config.survey import read_survey
from gateway.units import parse_duration, parse_rate, parse_size

__all__ = ["build"]

# the router itself (an SSH tunnel to the desk) always reaches the desk
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


# ---------------------------------------------------------------------------
# Sections


def _optional_path(r: _Reader, value: Any) -> Any:
    """Return ``value`` resolved as a path, or None for "" (the feature is off)."""
    return None if value == "" else r.resolve(value)


def _desk_networks(value: Any) -> Any:
    """Return the desk's networks plus loopback (a problem already reported stays as it is)."""
    return (*value, *LOOPBACK) if isinstance(value, tuple) else value


def _byte_rate(low: int, high: int):
    """Parse a rate like "16kbit" into bytes per second within [low, high]."""

    def parse(value: Any) -> int:
        rate = parse_rate(value) // 8
        if not low <= rate <= high:
            raise ValueError(f"must be between {low * 8} and {high * 8} bit/s, got {value!r}")
        return rate

    return parse


def _library(r: _Reader) -> Library:
    t = r.table(
        "library",
        {"id", "name", "location", "timezone", "opening_hours", "terms", "branding_dir", "wifi_name"},
    )
    return Library(
        id=r.get(t, "library.id", _slug),
        name=r.get(t, "library.name", _nonempty),
        location=r.get(t, "library.location", _str, ""),
        timezone=r.get(t, "library.timezone", _timezone, "Asia/Jakarta"),
        opening_hours=r.get(t, "library.opening_hours", _text, {}),
        terms=r.get(t, "library.terms", _text, {}),
        branding_dir=r.resolve(r.get(t, "library.branding_dir", _str, "/etc/hotspot/branding")),
        wifi_name=r.get(t, "library.wifi_name", _ssid, ""),
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
    t = r.table(
        "dhcp",
        {"range_start", "range_end", "lease_time", "dns_upstream", "lease_file", "per_device_per_minute",
         "pool_low", "dns_before_login", "dns_before_login_total", "online_lease_time", "hosts_dir",
         "reservations"},
    )  # fmt: skip
    lan = network.lan_address if network.lan_address is not _BAD else None
    hosts = list(lan.network.hosts()) if lan else []
    default_start = hosts[99] if len(hosts) > 200 else (hosts[1] if len(hosts) > 2 else _BAD)
    default_end = hosts[-2] if len(hosts) > 2 else _BAD
    dhcp = Dhcp(
        range_start=r.get(t, "dhcp.range_start", _ipv4, default_start),
        range_end=r.get(t, "dhcp.range_end", _ipv4, default_end),
        # short: a lease nobody renews is back in the pool soon (DHCP starvation, docs/security.md)
        lease_time=r.get(t, "dhcp.lease_time", parse_duration, 10 * 60),
        dns_upstream=r.get(t, "dhcp.dns_upstream", _list_of(_ipv4), ()),
        lease_file=r.resolve(r.get(t, "dhcp.lease_file", _str, "/var/lib/misc/dnsmasq.leases")),
        online_lease_time=r.get(t, "dhcp.online_lease_time", parse_duration, 2 * 3600),
        hosts_dir=_optional_path(r, r.get(t, "dhcp.hosts_dir", _str, "/var/lib/hotspot-dhcp")),
        per_device_per_minute=r.get(t, "dhcp.per_device_per_minute", _int(2, 600), 6),
        pool_low=r.get(t, "dhcp.pool_low", _float(0.0, 0.9), 0.1),
        dns_before_login=r.get(t, "dhcp.dns_before_login", _byte_rate(400, 1_000_000), 2_000),
        dns_before_login_total=r.get(t, "dhcp.dns_before_login_total", _byte_rate(400, 10_000_000), 32_000),
        reservations=_reservations(r, t, lan),
    )
    for key in ("lease_time", "online_lease_time"):
        if isinstance(getattr(dhcp, key), int) and getattr(dhcp, key) < 120:
            r.problem(f"dhcp.{key}", 'dnsmasq\'s shortest lease is 2 minutes ("2m")')
    if isinstance(dhcp.dns_before_login, int) and isinstance(dhcp.dns_before_login_total, int):
        if dhcp.dns_before_login > dhcp.dns_before_login_total:
            r.problem("dhcp.dns_before_login_total", "must not be below dhcp.dns_before_login")
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


def _reservations(
    r: _Reader, t: Mapping, lan: ipaddress.IPv4Interface | None
) -> tuple[tuple[str, ipaddress.IPv4Address], ...]:
    """``[[dhcp.reservations]]``: ``mac`` and ``ip`` of each device with a fixed address."""
    items = t.get("reservations", [])
    if not isinstance(items, list):
        r.problem("dhcp.reservations", "expected a list of tables ([[dhcp.reservations]] with mac and ip)")
        return ()
    out: list[tuple[str, ipaddress.IPv4Address]] = []
    for i, item in enumerate(items, 1):
        key = f"dhcp.reservations[{i}]"
        if not isinstance(item, dict):
            r.problem(key, f'expected a table like {{ mac = "...", ip = "..." }}, got {_type_name(item)}')
            continue
        r.known_keys(key, item, {"mac", "ip"})
        mac = r.get(item, f"{key}.mac", _mac)
        ip = r.get(item, f"{key}.ip", _ipv4)
        if _BAD in (mac, ip):
            continue
        if lan and (ip not in lan.network or ip == lan.ip):
            r.problem(f"{key}.ip", f"{ip} is not in the LAN {lan.network} or is the router's own address")
        elif mac in (m for m, _ in out):
            r.problem(f"{key}.mac", f"{mac} is reserved twice")
        elif ip in (a for _, a in out):
            r.problem(f"{key}.ip", f"{ip} is reserved twice")
        else:
            out.append((mac, ip))
    return tuple(out)


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
            "max_failures", "lockout", "max_failures_per_minute", "free_per_hour", "free_share",
            "local_name", "workers",
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
        survey=read_survey(r, t),
        max_failures=r.get(t, "portal.max_failures", _int(1, 1000), 5),
        lockout=r.get(t, "portal.lockout", parse_duration, 60),
        max_failures_per_minute=r.get(t, "portal.max_failures_per_minute", _int(1, 10000), 30),
        free_per_hour=r.get(t, "portal.free_per_hour", _int(1, 10000), 20),
        free_share=r.get(t, "portal.free_share", _float(0.01, 1.0), 0.25),
        local_name=r.get(t, "portal.local_name", _local_name, "wifi.perpus"),
        workers=r.get(t, "portal.workers", _int(1, 16), 1),
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


def _radius_server(value: Any) -> RadiusServer:
    if not isinstance(value, str):
        raise ValueError(f'expected "address" or "address:port", got {value!r}')
    host, _, port_text = value.partition(":")
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        raise ValueError(f'"{value}": "{host}" is not an IPv4 address') from None
    port = 1812
    if port_text:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65534:
            raise ValueError(f'"{value}": "{port_text}" is not a port')
        port = int(port_text)
    return RadiusServer(host=address, auth_port=port, acct_port=port + 1)


def _radius(r: _Reader, library: Library) -> Radius | None:
    if "radius" not in r.data:
        return None
    t = r.table(
        "radius",
        {
            "servers", "secret_file", "nas_identifier", "nas_ip", "timeout", "retries",
            "interim_interval", "device_id", "dynauth_listen", "dynauth_clients",
        },
    )  # fmt: skip
    servers = r.get(t, "radius.servers", _list_of(_radius_server))
    if servers is not _BAD and not servers:
        r.problem("radius.servers", "needs at least one server")
    device_id = r.get(t, "radius.device_id", _str, "hash")
    if device_id not in ("hash", "mac", _BAD):
        r.problem("radius.device_id", f'"{device_id}" must be "hash" or "mac"')
    dynauth = r.get(t, "radius.dynauth_listen", _listen, "")
    default_clients = tuple(s.host for s in servers) if servers is not _BAD else ()
    radius = Radius(
        servers=servers,
        secret_file=r.resolve(r.get(t, "radius.secret_file", _nonempty)),
        nas_identifier=r.get(t, "radius.nas_identifier", _nonempty, library.id),
        nas_ip=r.get(t, "radius.nas_ip", _ipv4, None),
        timeout=r.get(t, "radius.timeout", _float(0.1, 10.0), 1.0),
        retries=r.get(t, "radius.retries", _int(1, 10), 2),
        interim_interval=r.get(t, "radius.interim_interval", parse_duration, 300),
        device_id=device_id,
        dynauth_listen=dynauth,
        dynauth_clients=r.get(t, "radius.dynauth_clients", _list_of(_ipv4), default_clients),
    )
    if radius.interim_interval is not _BAD and not 1 <= radius.interim_interval <= 86400:
        r.problem("radius.interim_interval", "must be between 1s and 1d")
    if _BAD not in (radius.servers, radius.timeout, radius.retries) and radius.servers:
        if radius.auth_bound > MAX_AUTH_WAIT:
            r.problem(
                "radius.timeout",
                f"timeout x retries x servers = {radius.auth_bound:g}s; a visitor must get an answer "
                f"within {MAX_AUTH_WAIT:g}s (lower the timeout or the retries)",
            )
    return radius


def build(path: Path, data: dict[str, Any]) -> Config:
    r = _Reader(path, data)
    sections = {
        "library", "network", "dhcp", "uplink", "portal", "gateway", "redis", "paths",
        "session_log", "walled_garden", "desk", "metrics", "plans", "radius",
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
        # absent: the admin side only (network.admin_networks); the router itself always may
        networks=_desk_networks(r.get(desk_t, "desk.networks", _list_of(_network), network.admin_networks)),
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
    radius = _radius(r, library)

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
        radius=radius,
    )
