"""The gateway's nftables ruleset: render the template, and recognise it in the kernel.

Pure: no kernel, no Redis. :func:`render_ruleset` fills ``gateway/firewall/rules/hotspot.nft``
with the config's few, already validated values (``string.Template.substitute`` raises on
a missing one). :func:`config_statements` adds the config's fixed set elements (admin
networks, walled-garden networks, HQ's addresses). :func:`shape_fingerprint` reduces the kernel's terse
JSON listing of the table (chains, rules, set declarations, no elements) to a digest,
so a pass notices in one cheap read when someone flushed, edited or deleted the table.
"""

from __future__ import annotations

import hashlib
import json
import string
from importlib import resources
from typing import Any

from gateway.config import Config
from gateway.names import (
    ADMIN_SET4,
    ADMIN_SET6,
    GUARD_MARK,
    GUARD_PREF,
    HQ_SET4,
    NFT_FAMILY,
    NFT_TABLE,
    WALLED_NETS4,
)

__all__ = [
    "TABLE",
    "config_statements",
    "render_ruleset",
    "ruleset_digest",
    "shape_fingerprint",
    "template_text",
]

TABLE = f"{NFT_FAMILY} {NFT_TABLE}"
TEMPLATE = "hotspot.nft"

# Before login (docs/security.md): a phone needs a handful of lookups to find the portal.
DNS_QPS = 3  # queries per second per MAC and per address, after a burst of
DNS_QBURST = 30
DNS_TOTAL_QPS = 100  # all devices that are not logged in together
DNS_QUERY_MAX = 320  # UDP length of a query: header 8 + DNS 12 + name <= 255 + type/class 4 + EDNS 11
DHCP_TOTAL = 10  # DHCP packets per second from the whole LAN, after a burst of
DHCP_TOTAL_BURST = 60


def template_text() -> str:
    """Return the ruleset template shipped with the package (``gateway/firewall/rules/hotspot.nft``)."""
    return resources.files("gateway.firewall").joinpath("rules", TEMPLATE).read_text(encoding="utf-8")


def _values(config: Config) -> dict[str, str]:
    net, portal, dhcp = config.network, config.portal, config.dhcp
    return {
        "lan": net.lan_interface,
        "portal_address": str(portal.address),
        "portal_port": str(portal.port),
        "portal_tls_port": str(portal.tls_port),
        "ssh_port": str(net.ssh_port),
        "guard_mark": f"0x{GUARD_MARK:08x}",
        "guard_pref": str(GUARD_PREF),
        "guard_pref_drop": str(GUARD_PREF + 1),
        "dns_qps": str(DNS_QPS),
        "dns_qburst": str(DNS_QBURST),
        "dns_total_qps": str(DNS_TOTAL_QPS),
        "dns_total_qburst": str(DNS_TOTAL_QPS * 2),
        "dns_query_max": str(DNS_QUERY_MAX),
        "dns_bytes": str(dhcp.dns_before_login),
        "dns_bytes_burst": str(dhcp.dns_before_login * 4),
        "dns_total_bytes": str(dhcp.dns_before_login_total),
        "dns_total_bytes_burst": str(dhcp.dns_before_login_total * 2),
        "dhcp_per_minute": str(dhcp.per_device_per_minute),
        "dhcp_burst": str(max(4, dhcp.per_device_per_minute)),
        "dhcp_total": str(DHCP_TOTAL),
        "dhcp_total_burst": str(DHCP_TOTAL_BURST),
    }


def ruleset_digest(config: Config, template: str | None = None) -> str:
    """Return a short digest of the ruleset ``config`` renders (changes with template or values)."""
    text = string.Template(template or template_text()).substitute(_values(config), digest="")
    extra = "\n".join(config_statements(config))
    return hashlib.sha256((text + extra).encode()).hexdigest()[:12]


def render_ruleset(config: Config, template: str | None = None) -> str:
    """Return the ``table inet hotspot { ... }`` text for ``config`` (no set elements)."""
    template = template or template_text()
    digest = ruleset_digest(config, template)
    return string.Template(template).substitute(_values(config), digest=digest)


def config_statements(config: Config) -> list[str]:
    """Return the ``add element`` statements for the config's fixed sets (admin, walled networks)."""
    admin4 = [str(n) for n in config.network.admin_networks if n.version == 4]
    admin6 = [str(n) for n in config.network.admin_networks if n.version == 6]
    walled = [str(n) for n in config.walled_garden.networks]
    hq: list[str] = []
    if config.radius is not None:
        hq = sorted(
            {str(s.host) for s in config.radius.servers} | {str(a) for a in config.radius.dynauth_clients}
        )
    out = []
    for name, items in ((ADMIN_SET4, admin4), (ADMIN_SET6, admin6), (WALLED_NETS4, walled), (HQ_SET4, hq)):
        if items:
            out.append(f"add element {TABLE} {name} {{ {', '.join(items)} }}")
    return out


def shape_fingerprint(listing: dict[str, Any] | None) -> str:
    """Return a digest of a terse ``list table`` JSON (rules and set declarations), "" if absent.

    Handles, the metainfo header and set elements are left out: they change without the
    ruleset changing. Two tables with equal fingerprints enforce the same rules.
    """
    if not listing:
        return ""
    items = []
    for item in listing.get("nftables", []):
        if "metainfo" in item:
            continue
        (kind, body), *_ = item.items()
        body = {k: v for k, v in body.items() if k not in ("handle", "elem")}
        items.append({kind: body})
    if not items:
        return ""
    text = json.dumps(items, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
