"""Render the dnsmasq config for the LAN: DHCP, DNS, option 114, the portal's short name,
the walled-garden sets.

Pure: the lab and ``make install`` write what :func:`render_dnsmasq_conf` returns
(a drop-in for the router's dnsmasq), so both run the same DHCP/DNS setup.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from gateway.config import Config
from gateway.names import NFT_FAMILY, NFT_TABLE, WALLED_SET4

__all__ = ["leases_in_pool", "render_dnsmasq_conf"]


def render_dnsmasq_conf(
    config: Config,
    *,
    lease_file: Path,
    extra: tuple[str, ...] = (),
) -> str:
    """Return a dnsmasq config serving DHCP and DNS on the LAN interface of ``config``."""
    net = config.network
    dhcp = config.dhcp
    lines = [
        "# PerpuSeru Hotspot: DHCP and DNS for the library LAN (generated; edit hotspot.toml)",
        f"interface={net.lan_interface}",
        "bind-interfaces",
        "dhcp-authoritative",
        f"dhcp-range={dhcp.range_start},{dhcp.range_end},{net.lan_network.netmask},{dhcp.lease_time}",
        f"dhcp-option=option:router,{net.router_ip}",
        f"dhcp-option=option:dns-server,{net.router_ip}",
        # RFC 8910: tell phones where the captive-portal API is (only asked-for, as the RFC says)
        f'dhcp-option=114,"{config.portal.api_url}"',
        f"dhcp-leasefile={lease_file}",
        # every device gets the short lease_time; one that logged in, online_lease_time from its
        # next renewal (the gateway writes one file per MAC here: gateway/daemon/dhcp_hosts.py)
        *([f"dhcp-hostsdir={dhcp.hosts_dir}"] if dhcp.hosts_dir else []),
        "domain-needed",
        "bogus-priv",
        "cache-size=2000",
        # the largest UDP answer (dnsmasq's default, said out loud): with the per-MAC query rate
        # it bounds DNS before login for a device with many addresses (docs/security.md)
        "edns-packet-max=1232",
    ]
    # fixed addresses (the desk PC); the gateway repeats the address in its online-lease file
    lines += [f"dhcp-host={mac},{ip}" for mac, ip in dhcp.reservations]
    if dhcp.dns_upstream:
        lines.append("no-resolv")
        lines += [f"server={server}" for server in dhcp.dns_upstream]
    if config.portal.local_name:
        # the portal's short name (http://wifi.perpus), answered by the router itself
        lines.append(f"host-record={config.portal.local_name},{config.portal.address}")
    for host in config.walled_garden.hosts:
        # addresses dnsmasq answers for walled-garden names are opened for unauthorized phones
        lines.append(f"nftset=/{host}/4#{NFT_FAMILY}#{NFT_TABLE}#{WALLED_SET4}")
    lines += list(extra)
    return "\n".join(lines) + "\n"


def leases_in_pool(
    lease_text: str, start: ipaddress.IPv4Address, end: ipaddress.IPv4Address, now: float
) -> int:
    """Return how many unexpired leases in dnsmasq's lease file fall in ``start``..``end``.

    A line is ``<expiry epoch> <mac> <ip> <hostname> <client-id>`` (expiry 0 = never).
    """
    count = 0
    for line in lease_text.splitlines():
        fields = line.split()
        if len(fields) < 3 or not fields[0].isdigit():
            continue
        try:
            ip = ipaddress.ip_address(fields[2])
        except ValueError:
            continue
        expiry = int(fields[0])
        if ip.version == 4 and start <= ip <= end and (expiry == 0 or expiry > now):
            count += 1
    return count
